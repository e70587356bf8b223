/**
 * @module Invocation rows for tests, written straight into Postgres in the shape the
 * invocation gateway will write them (one row per attempt). Times are naive UTC text
 * with microseconds (`2024-03-05 10:15:00.123456`), which a JavaScript Date could not
 * carry; the weekly partitions they need are created first.
 */
import { type SQL, sql } from "drizzle-orm";
import type { AnyDatabase } from "../../src/db/types.ts";

export interface SeedInvocation {
  invocationId: string;
  parentInvocationId: string;
  chuteId: string;
  chuteUserId: string;
  functionName: string;
  userId: string;
  imageId: string;
  imageUserId: string;
  instanceId: string;
  minerUid: number;
  minerHotkey: string;
  /** Naive UTC, microseconds optional. */
  startedAt: string;
  completedAt: string | null;
  errorMessage: string | null;
  computeMultiplier: number;
  bounty: number;
  metrics: Record<string, number> | null;
}

/** A successful attempt with fresh ids; override what the test is about. */
export function invocation(overrides: Partial<SeedInvocation> & Pick<SeedInvocation, "startedAt">): SeedInvocation {
  const id = crypto.randomUUID();
  return {
    invocationId: id,
    parentInvocationId: crypto.randomUUID(),
    chuteId: "chute-a",
    chuteUserId: "dev-user",
    functionName: "chat",
    userId: "caller",
    imageId: "image-a",
    imageUserId: "dev-user",
    instanceId: `instance-${id.slice(0, 8)}`,
    minerUid: 1,
    minerHotkey: "5Cfv7fcjhtGaQEjdKEHfxgRpS97TLUqmRjeXwTtYUk8S7eui",
    completedAt: null,
    errorMessage: null,
    computeMultiplier: 1,
    bounty: 0,
    metrics: null,
    ...overrides,
  };
}

const ts = (text: string | null): SQL => (text === null ? sql`null` : sql`${`${text}+00`}::timestamptz`);

export async function seedInvocations(db: AnyDatabase, rows: SeedInvocation[]): Promise<void> {
  if (rows.length === 0) return;
  const weeks = new Set(rows.map((r) => r.startedAt.slice(0, 10)));
  for (const day of weeks)
    await db.execute(sql`select ensure_invocation_partition(${`${day} 00:00:00+00`}::timestamptz)`);
  // A few rows per statement: tests seed rows carrying hundreds of KiB of text.
  for (let i = 0; i < rows.length; i += 16) await insertRows(db, rows.slice(i, i + 16));
}

async function insertRows(db: AnyDatabase, rows: SeedInvocation[]): Promise<void> {
  const values = rows.map(
    (r) => sql`(${r.invocationId}, ${r.parentInvocationId}, ${r.chuteId}, ${r.chuteUserId}, ${r.functionName},
      ${r.userId}, ${r.imageId}, ${r.imageUserId}, ${r.instanceId}, ${r.minerUid}, ${r.minerHotkey},
      ${ts(r.startedAt)}, ${ts(r.completedAt)}, ${r.errorMessage}, ${r.computeMultiplier}, ${r.bounty},
      ${r.metrics === null ? null : JSON.stringify(r.metrics)}::jsonb)`,
  );
  await db.execute(sql`insert into invocations (invocation_id, parent_invocation_id, chute_id, chute_user_id,
    function_name, user_id, image_id, image_user_id, instance_id, miner_uid, miner_hotkey, started_at, completed_at,
    error_message, compute_multiplier, bounty, metrics) values ${sql.join(values, sql`, `)}`);
}

/** `2024-03-05 10:15:00` + offset seconds (fractions allowed), as naive UTC text with microseconds. */
export function at(hourStart: Date, seconds: number): string {
  const micros = BigInt(hourStart.getTime()) * 1000n + BigInt(Math.round(seconds * 1e6));
  const date = new Date(Number(micros / 1000n));
  const fraction = String(micros % 1_000_000n).padStart(6, "0");
  return `${date.toISOString().slice(0, 19).replace("T", " ")}.${fraction}`;
}
