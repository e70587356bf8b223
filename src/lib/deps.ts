/**
 * @module The per-request dependency set handlers and services use: Postgres, Redis, R2
 * and the clock. Each is opened on first use, so a request that touches no database
 * opens no connection, and `close()` ends whatever was opened.
 */
import { type Database, openDatabase } from "../db/client.ts";
import type { Config } from "../env.ts";
import { openRedis, type Redis } from "./redis.ts";

export interface Deps {
  readonly config: Config;
  readonly db: Database;
  readonly redis: Redis;
  readonly bucket: R2Bucket;
  now(): Date;
}

export class RequestDeps implements Deps {
  readonly config: Config;
  #db: ReturnType<typeof openDatabase> | null = null;
  #redis: Redis | null = null;

  constructor(config: Config) {
    this.config = config;
  }

  get db(): Database {
    this.#db ??= openDatabase(this.config);
    return this.#db.db;
  }

  get redis(): Redis {
    this.#redis ??= openRedis(this.config);
    return this.#redis;
  }

  get bucket(): R2Bucket {
    return this.config.BUCKET;
  }

  now(): Date {
    return new Date();
  }

  /** Ends the database pool if this request opened one. */
  async close(): Promise<void> {
    const handle = this.#db;
    this.#db = null;
    await handle?.close();
  }
}
