import { Transform, type TransformCallback } from 'node:stream';

/** Passes a request body through, failing once more than `max` bytes went by (chunked bodies have no length to check up front). */
export class BodyLimit extends Transform {
  #left: number;
  exceeded = false;

  constructor(max: number) {
    super();
    this.#left = max;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#left -= chunk.length;
    if (this.#left < 0) {
      this.exceeded = true;
      callback(new Error('request body over the limit'));
      return;
    }
    callback(null, chunk);
  }
}
