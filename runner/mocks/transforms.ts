/**
 * Hook between a matched recording and the answer served: the snapshot's transform rules
 * (snapshots/transforms `createMockContext`) shape the recorded answer for this live call, e.g.
 * echo the live order id or shift recorded times. Without rules the recording is served as is.
 */
import type { Exchange, Response } from '../../core/exchange.js';
import { createMockContext, type LiveRequest, type TransformsFile } from '../../snapshots/replay.js';

export type { LiveRequest };

export interface Shaped {
  response: Response;
  notes: string[];
}

export type Answerer = (recorded: Exchange, live: LiveRequest) => Shaped;

export function createAnswerer(transforms: TransformsFile | undefined): Answerer {
  const plain: Answerer = (recorded) => ({ response: recorded.response!, notes: [] });
  if (!transforms || transforms.rules.length === 0) return plain;
  const ctx = createMockContext(transforms);
  return (recorded, live) => {
    try {
      const a = ctx.respond(recorded, live);
      return { response: a.response, notes: a.notes };
    } catch (e) {
      return {
        response: recorded.response!,
        notes: [`transform rules failed, recorded answer served as is: ${(e as Error).message}`],
      };
    }
  };
}
