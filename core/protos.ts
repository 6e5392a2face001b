/**
 * Names for gRPC messages from the user's `.proto` files (protobufjs). Pass the result as
 * `DecoderOptions.grpc.schema`. Loading errors become one RetapError naming the files.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { ErrorCodes, RetapError } from './errors.js';
import type { GrpcSchema } from './protobuf.js';

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
  return schemaOf(root);
}

/**
 * Names from serialized FileDescriptorProtos (base64; what gRPC server reflection hands out,
 * runner/reflection.ts), as one schema: the same decoding as `.proto` files give.
 */
export function schemaFromDescriptors(files: string[]): GrpcSchema {
  try {
    const set = descriptor.FileDescriptorSet.create({
      file: files.map((f) => descriptor.FileDescriptorProto.decode(Buffer.from(f, 'base64'))),
    });
    // protobufjs/ext/descriptor adds Root.fromDescriptor at load time; its typings do not say so
    const Root = protobuf.Root as unknown as { fromDescriptor(d: unknown): protobuf.Root };
    const root = Root.fromDescriptor(set);
    root.resolveAll();
    return schemaOf(root);
  } catch (e) {
    throw new RetapError(
      ErrorCodes.CONFIG_INVALID,
      `the build's reflected descriptors do not make a schema: ${(e as Error).message}`,
      {
        hint: 'Give the .proto files with --proto DIR (they win over reflection), or turn reflection off with --no-reflection.',
        cause: e,
      },
    );
  }
}

function schemaOf(root: protobuf.Root): GrpcSchema {
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
  const typeOf = (path: string, direction: 'request' | 'response'): protobuf.Type | null => {
    const m = find(path);
    if (!m) return null;
    return (direction === 'request' ? m.resolvedRequestType : m.resolvedResponseType) ?? null;
  };
  return {
    decode(path, direction, message) {
      const type = typeOf(path, direction);
      if (!type) return undefined;
      return type.toObject(type.decode(message), toObjectOptions);
    },
    fields(path, direction) {
      const type = typeOf(path, direction);
      return type ? new Set(Object.keys(type.fieldsById).map(Number)) : undefined;
    },
    encode(path, direction, value) {
      const type = typeOf(path, direction);
      if (!type) return undefined;
      return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
    },
  };
}

/**
 * Every `.proto` file under the given folders (each folder also an import root), as one schema.
 * A folder without any is an error: a misspelled `--proto` must not quietly compare by number.
 */
export function loadProtoDirs(dirs: string[]): GrpcSchema {
  const files: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory() && depth < 16 && !name.startsWith('.') && name !== 'node_modules')
        walk(p, depth + 1);
      else if (st.isFile() && name.endsWith('.proto')) files.push(p);
    }
  };
  for (const dir of dirs) {
    try {
      walk(dir, 0);
    } catch (e) {
      throw new RetapError(
        ErrorCodes.CONFIG_INVALID,
        `cannot read .proto folder ${dir}: ${(e as Error).message}`,
        {
          hint: "Give --proto (or assertions.proto in retap.yaml) a folder that holds the service's .proto files.",
          cause: e,
        },
      );
    }
  }
  if (files.length === 0)
    throw new RetapError(ErrorCodes.CONFIG_INVALID, `no .proto files under ${dirs.join(', ')}`, {
      hint: "Give --proto (or assertions.proto in retap.yaml) a folder that holds the service's .proto files.",
    });
  return loadProtos(files, dirs);
}
