/**
 * @module A minimal SCALE codec for the fake subtensor node, written from the SCALE spec
 * (parity-scale-codec) rather than with `@polkadot/types`, so what the node encodes and
 * decodes is checked independently of the library the real implementation uses.
 */

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Unsigned little-endian integer of `bytes` bytes. */
export function uint(value: number | bigint, bytes: number): Uint8Array {
  let v = BigInt(value);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (v !== 0n) throw new Error(`${value} does not fit in ${bytes} bytes`);
  return out;
}

export const u8 = (v: number) => uint(v, 1);
export const u16 = (v: number) => uint(v, 2);
export const u32 = (v: number) => uint(v, 4);
export const u64 = (v: number | bigint) => uint(v, 8);
export const u128 = (v: number | bigint) => uint(v, 16);
export const bool = (v: boolean) => u8(v ? 1 : 0);

/** SCALE compact integer. */
export function compact(value: number | bigint): Uint8Array {
  const v = BigInt(value);
  if (v < 1n << 6n) return u8(Number(v << 2n));
  if (v < 1n << 14n) return u16(Number((v << 2n) | 1n));
  if (v < 1n << 30n) return u32(Number((v << 2n) | 2n));
  let bytes = 0;
  for (let rest = v; rest > 0n; rest >>= 8n) bytes++;
  return concat(u8(((bytes - 4) << 2) | 3), uint(v, bytes));
}

export function vec(items: Uint8Array[]): Uint8Array {
  return concat(compact(items.length), ...items);
}

export function option(value: Uint8Array | null): Uint8Array {
  return value === null ? u8(0) : concat(u8(1), value);
}

export class Reader {
  #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  get offset(): number {
    return this.#offset;
  }

  bytes(n: number): Uint8Array {
    if (n > this.remaining) throw new Error(`wanted ${n} bytes, ${this.remaining} left`);
    const out = this.#bytes.slice(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }

  uint(bytes: number): bigint {
    const raw = this.bytes(bytes);
    let v = 0n;
    for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i] ?? 0);
    return v;
  }

  u8(): number {
    return Number(this.uint(1));
  }

  u16(): number {
    return Number(this.uint(2));
  }

  u32(): number {
    return Number(this.uint(4));
  }

  u64(): bigint {
    return this.uint(8);
  }

  compact(): bigint {
    const first = this.#bytes[this.#offset] ?? 0;
    switch (first & 3) {
      case 0:
        return this.uint(1) >> 2n;
      case 1:
        return this.uint(2) >> 2n;
      case 2:
        return this.uint(4) >> 2n;
      default:
        this.#offset++;
        return this.uint((first >> 2) + 4);
    }
  }

  vec<T>(item: (r: Reader) => T): T[] {
    const n = Number(this.compact());
    return Array.from({ length: n }, () => item(this));
  }
}
