/** The schema-less protobuf wire format lives in core/protobuf.ts (assertions and transforms read it too). */
export { decodeRaw, encodeRaw, type RawField } from '../../../core/protobuf.js';
