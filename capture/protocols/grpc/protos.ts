/**
 * Names for gRPC messages from the user's `.proto` files (protobufjs). Pass the result as
 * `DecoderOptions.grpc.schema`. Loading errors become one RetapError naming the files.
 */
import protobuf from 'protobufjs';
import { ErrorCodes, RetapError } from '../../../core/errors.js';
import type { GrpcSchema } from '../types.js';

const toObjectOptions = { longs: String, enums: String, bytes: String, defaults: false } as const;

export function loadProtos(paths: string[], includeDirs: string[] = []): GrpcSchema {
  const root = new protobuf.Root();
  if (includeDirs.length > 0) {
    const original = root.resolvePath.bind(root);
    root.resolvePath = (origin, target) => {
      for (const dir of includeDirs) {
        const candidate = `${dir.replace(/\/$/, '')}/${target}`;
        try {
          // protobufjs reads synchronously with loadSync; prefer include dirs when the file exists.
          if (protobuf.util.fs?.existsSync?.(candidate)) return candidate;
        } catch {
          // fall through
        }
      }
      return original(origin, target);
    };
  }
  try {
    root.loadSync(paths, { keepCase: true });
    root.resolveAll();
  } catch (e) {
    throw new RetapError(
      ErrorCodes.CONFIG_INVALID,
      `could not load .proto files ${paths.join(', ')}: ${(e as Error).message}`,
      {
        hint: 'Check the paths and that imports resolve (pass include directories for imports).',
        cause: e,
        details: { paths },
      },
    );
  }
  const methods = new Map<string, protobuf.Method | null>();
  const find = (path: string): protobuf.Method | null => {
    let m = methods.get(path);
    if (m !== undefined) return m;
    m = null;
    const slash = path.lastIndexOf('/');
    if (slash > 0) {
      const service = root.lookup(path.slice(1, slash));
      if (service instanceof protobuf.Service) {
        const method = service.methods[path.slice(slash + 1)];
        if (method) {
          method.resolve();
          m = method;
        }
      }
    }
    methods.set(path, m);
    return m;
  };
  return {
    decode(path, direction, message) {
      const m = find(path);
      if (!m) return undefined;
      const type = direction === 'request' ? m.resolvedRequestType : m.resolvedResponseType;
      if (!type) return undefined;
      return type.toObject(type.decode(message), toObjectOptions);
    },
  };
}
