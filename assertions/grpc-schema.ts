/**
 * Which names gRPC messages are compared with: the `.proto` files given (`--proto DIR`,
 * `assertions.proto`) win; without them, the schema the build under test gave over server
 * reflection during the replay (results.json `runs[].reflection`, runner/reflection.ts); without
 * either, field numbers (`#2.3`). Why a recording with gRPC is compared by number is said once,
 * as a warning of the verdict (`grpc-reflection`), never as an error.
 */
import { schemaFromDescriptors } from '../core/protos.js';
import type { ReplayResults } from '../core/results.js';
import type { MessageSchema } from './grpc.js';

export interface GrpcSchemaChoice {
  schema?: MessageSchema;
  /** Where the names come from. */
  source: 'proto' | 'reflection' | 'none';
  /** Why there are no names although the build was asked (the verdict's warning). */
  note?: { run: string; code: string; message: string };
}

export function grpcSchemaFor(results: ReplayResults, protos: MessageSchema | undefined): GrpcSchemaChoice {
  if (protos) return { schema: protos, source: 'proto' };
  // the build under test's schema first (the first candidate run), a baseline's only without it
  const asked = [...results.runs]
    .sort((a, b) => (a.role === b.role ? 0 : a.role === 'candidate' ? -1 : 1))
    .filter((r) => r.reflection !== undefined);
  const withFiles = asked.find((r) => r.reflection?.files?.length);
  if (withFiles) {
    try {
      return { schema: schemaFromDescriptors(withFiles.reflection!.files!), source: 'reflection' };
    } catch (e) {
      return {
        source: 'none',
        note: {
          run: withFiles.label,
          code: 'grpc-reflection',
          message: `${(e as Error).message}: gRPC messages compared by field number (#2); give the .proto files with --proto DIR for names`,
        },
      };
    }
  }
  const first = asked[0];
  if (!first) return { source: 'none' };
  return {
    source: 'none',
    note: {
      run: first.label,
      code: 'grpc-reflection',
      message: `${first.reflection?.error ?? 'the build gave no gRPC schema'}: gRPC messages compared by field number (#2); give the .proto files with --proto DIR (or assertions.proto in retap.yaml) for names`,
    },
  };
}
