/**
 * @module One-shot SHA-256 (FIPS 180-4) that allocates nothing per call: the input is
 * read in place and the digest written into the caller's buffer. An hourly export hashes
 * every receipt and every Merkle node, two short inputs per row; a general-purpose
 * library's per-call objects (hash state, DataViews, result arrays) cost more than the
 * compression itself at a million rows (measured by `npm run bench:export`).
 *
 * The constants are derived as the standard defines them (fractional parts of the cube
 * and square roots of the first primes); test/unit/export-format.test.ts checks the
 * whole function against @noble/hashes.
 */

function firstPrimes(count: number): number[] {
  const primes: number[] = [];
  for (let n = 2; primes.length < count; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
  return primes;
}

// Int32 storage: the optimising compiler then keeps every word in an integer register
// (values above 2^31 read from a Uint32Array become floating point).
const fraction32 = (x: number) => Math.floor((x - Math.floor(x)) * 2 ** 32) | 0;
const K = Int32Array.from(firstPrimes(64), (p) => fraction32(Math.cbrt(p)));
const IV = Int32Array.from(firstPrimes(8), (p) => fraction32(Math.sqrt(p)));

export class Sha256Block {
  readonly #w = new Int32Array(64);
  readonly #h = new Int32Array(8);
  readonly #tail = new Uint8Array(128);

  /** SHA-256 of `data` into `out[offset .. offset + 32)`. */
  hashInto(data: Uint8Array, out: Uint8Array, offset = 0): void {
    const h = this.#h;
    h.set(IV);
    const length = data.length;
    const full = length - (length % 64);
    for (let i = 0; i < full; i += 64) this.#compress(data, i);
    const tail = this.#tail;
    const rest = length - full;
    for (let i = 0; i < rest; i++) tail[i] = data[full + i] as number;
    tail[rest] = 0x80;
    const end = rest < 56 ? 64 : 128;
    tail.fill(0, rest + 1, end);
    const bits = length * 8;
    const high = Math.floor(bits / 2 ** 32);
    tail[end - 8] = high >>> 24;
    tail[end - 7] = high >>> 16;
    tail[end - 6] = high >>> 8;
    tail[end - 5] = high;
    tail[end - 4] = bits >>> 24;
    tail[end - 3] = bits >>> 16;
    tail[end - 2] = bits >>> 8;
    tail[end - 1] = bits;
    this.#compress(tail, 0);
    if (end === 128) this.#compress(tail, 64);
    for (let i = 0; i < 8; i++) {
      const word = h[i] as number;
      out[offset + 4 * i] = word >>> 24;
      out[offset + 4 * i + 1] = word >>> 16;
      out[offset + 4 * i + 2] = word >>> 8;
      out[offset + 4 * i + 3] = word;
    }
  }

  #compress(d: Uint8Array, o: number): void {
    const w = this.#w;
    for (let i = 0; i < 16; i++) {
      const j = o + 4 * i;
      w[i] =
        ((d[j] as number) << 24) | ((d[j + 1] as number) << 16) | ((d[j + 2] as number) << 8) | (d[j + 3] as number);
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15] as number;
      const y = w[i - 2] as number;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = ((w[i - 16] as number) + s0 + (w[i - 7] as number) + s1) | 0;
    }
    const h = this.#h;
    let a = h[0] as number;
    let b = h[1] as number;
    let c = h[2] as number;
    let e = h[4] as number;
    let dd = h[3] as number;
    let f = h[5] as number;
    let g = h[6] as number;
    let hh = h[7] as number;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + (K[i] as number) + (w[i] as number)) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (dd + t1) | 0;
      dd = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = ((h[0] as number) + a) | 0;
    h[1] = ((h[1] as number) + b) | 0;
    h[2] = ((h[2] as number) + c) | 0;
    h[3] = ((h[3] as number) + dd) | 0;
    h[4] = ((h[4] as number) + e) | 0;
    h[5] = ((h[5] as number) + f) | 0;
    h[6] = ((h[6] as number) + g) | 0;
    h[7] = ((h[7] as number) + hh) | 0;
  }
}
