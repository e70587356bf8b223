/**
 * @module The proof's PRNG: the ChaCha20 block function of RFC 8439 (32-bit block counter,
 * 96-bit nonce), used as a counter-based generator. Every 64-byte block is addressable
 * on its own, which is what lets each GPU thread produce its part of a matrix
 * independently (the CUDA kernel in gpu-agent/native/ computes the same words).
 *
 * Only 32-bit add, xor and rotate, written with `| 0` and `>>>` so JavaScript stays in
 * int32 arithmetic.
 */

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] as const;

/** A ChaCha20 key (32 bytes) as eight little-endian words. */
export function keyWords(key: Uint8Array): Uint32Array {
  if (key.length !== 32) throw new RangeError("a ChaCha20 key is 32 bytes");
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const words = new Uint32Array(8);
  for (let i = 0; i < 8; i++) words[i] = view.getUint32(4 * i, true);
  return words;
}

function quarterRound(x: Int32Array, a: number, b: number, c: number, d: number): void {
  let xa = x[a] as number;
  let xb = x[b] as number;
  let xc = x[c] as number;
  let xd = x[d] as number;
  xa = (xa + xb) | 0;
  xd ^= xa;
  xd = (xd << 16) | (xd >>> 16);
  xc = (xc + xd) | 0;
  xb ^= xc;
  xb = (xb << 12) | (xb >>> 20);
  xa = (xa + xb) | 0;
  xd ^= xa;
  xd = (xd << 8) | (xd >>> 24);
  xc = (xc + xd) | 0;
  xb ^= xc;
  xb = (xb << 7) | (xb >>> 25);
  x[a] = xa;
  x[b] = xb;
  x[c] = xc;
  x[d] = xd;
}

/**
 * Writes the keystream blocks `counter0 … counter0 + ceil(out.length / 64) − 1` for
 * `key` and the nonce words `(n0, n1, n2)` into `out` (little-endian words, as RFC 8439
 * serialises them); a partial last block is truncated.
 */
export function chachaFill(key: Uint32Array, n0: number, n1: number, n2: number, counter0: number, out: Uint8Array) {
  const input = new Int32Array(16);
  input.set(SIGMA, 0);
  input.set(key, 4);
  input[13] = n0;
  input[14] = n1;
  input[15] = n2;
  const x = new Int32Array(16);
  const block = new Uint8Array(64);
  const view = new DataView(block.buffer);
  const blocks = Math.ceil(out.length / 64);
  for (let b = 0; b < blocks; b++) {
    input[12] = (counter0 + b) | 0;
    x.set(input);
    for (let round = 0; round < 10; round++) {
      quarterRound(x, 0, 4, 8, 12);
      quarterRound(x, 1, 5, 9, 13);
      quarterRound(x, 2, 6, 10, 14);
      quarterRound(x, 3, 7, 11, 15);
      quarterRound(x, 0, 5, 10, 15);
      quarterRound(x, 1, 6, 11, 12);
      quarterRound(x, 2, 7, 8, 13);
      quarterRound(x, 3, 4, 9, 14);
    }
    for (let i = 0; i < 16; i++) view.setInt32(4 * i, ((x[i] as number) + (input[i] as number)) | 0, true);
    const offset = b * 64;
    out.set(offset + 64 <= out.length ? block : block.subarray(0, out.length - offset), offset);
  }
}
