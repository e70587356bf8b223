/**
 * @module The miner hub: one Durable Object holding every miner's WebSocket, so events
 * fan out from a single writer with one sequence (docs/protocols.md, "Miner socket").
 *
 * - Only authenticated miners get here: the Worker verifies the upgrade request's hotkey
 *   signature and metagraph registration, then forwards it with the hotkey in
 *   `MINER_HOTKEY_HEADER` (set by the Worker after removing any client copy). The object
 *   is reachable only through its binding, so that header is trusted.
 * - Hibernation: sockets stay open while the object sleeps. What the object knows about a
 *   socket is in the runtime (tags: `miner` on all, `hk:{hotkey}` per hotkey, which makes
 *   targeted delivery an index lookup) and in its attachment (hotkey, connect time, the
 *   sequence number it joined at; a few dozen bytes of the 16 KiB allowed). The only other
 *   state is the event buffer in SQLite, so a woken or restarted object has nothing to
 *   rebuild beyond reading its last sequence number.
 * - `{"type":"ping"}` is answered by the runtime (`setWebSocketAutoResponse`) without
 *   waking the object.
 * - Every published event gets the next `seq` and is kept in a bounded buffer (the last
 *   `EVENT_BUFFER_SIZE` events); a reconnecting miner asks for what it missed with
 *   `?since=` on the upgrade or a `resume` frame, or is told to resynchronise when its gap
 *   is older than the buffer.
 * - Closes are reciprocated quietly (`closeQuietly`); the hub never closes a socket itself,
 *   so a miner only loses its connection to deploys and networks, and reconnects.
 */
import { DurableObject } from "cloudflare:workers";
import type { MinerEvent, PublishedEvent } from "../src/services/miner-events.ts";
import { acceptUpgrade, closeQuietly, parseFrame, sendJson, sendText } from "./sockets.ts";

/** Carries the authenticated hotkey from the Worker to the hub. */
export const MINER_HOTKEY_HEADER = "x-chutes-edge-miner-hotkey";
/** How many past events a reconnecting miner can recover. */
export const EVENT_BUFFER_SIZE = 1000;

export const PING_FRAME = JSON.stringify({ type: "ping" });
export const PONG_FRAME = JSON.stringify({ type: "pong" });

const ALL_MINERS = "miner";
const hotkeyTag = (hotkey: string) => `hk:${hotkey}`;

interface MinerAttachment {
  hotkey: string;
  connectedAt: number;
  /** The hub's last sequence number when the socket joined: later events reached it live. */
  joinedSeq: number;
}

export interface MinerConnection {
  hotkey: string;
  connectedAt: number;
}

const isSeq = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

export class MinerHub extends DurableObject {
  #seq: number;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, recipients TEXT, frame TEXT NOT NULL)");
    this.#seq = Number(sql.exec("SELECT coalesce(max(seq), 0) AS seq FROM events").one().seq);
  }

  /** Accepts a miner's WebSocket upgrade, forwarded by the Worker once it authenticated it. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const hotkey = request.headers.get(MINER_HOTKEY_HEADER);
    if (!hotkey) return new Response("unauthenticated miner", { status: 401 });
    const since = new URL(request.url).searchParams.get("since");
    const attachment: MinerAttachment = { hotkey, connectedAt: Date.now(), joinedSeq: this.#seq };
    const { response, server } = acceptUpgrade(this.ctx, [ALL_MINERS, hotkeyTag(hotkey)], attachment);
    sendJson(server, {
      type: "hello",
      seq: this.#seq,
      data: { hotkey, connected_at: attachment.connectedAt, oldest_seq: this.#oldestSeq() },
    });
    // Replayed before any live event can be published: nothing runs between here and the return.
    if (since !== null) this.#resume(server, attachment, /^\d{1,15}$/.test(since) ? Number(since) : Number.NaN);
    return response;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const frame = parseFrame(message);
    if (!frame || typeof frame.type !== "string") {
      sendJson(ws, { type: "error", reason: "frames must be JSON objects with a string `type`" });
      return;
    }
    if (frame.type === "ping") {
      sendJson(ws, { type: "pong", seq: frame.seq ?? null });
      return;
    }
    if (frame.type === "resume") {
      this.#resume(ws, ws.deserializeAttachment() as MinerAttachment, frame.seq);
      return;
    }
    sendJson(ws, { type: "error", reason: `unknown frame type ${JSON.stringify(frame.type).slice(0, 64)}` });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeQuietly(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeQuietly(ws, 1011, "socket error");
  }

  /**
   * Numbers, buffers and delivers an event (RPC): to every miner socket, or only to the
   * sockets of `recipients`. The frame is serialised once for all of them.
   */
  async publish(event: MinerEvent): Promise<PublishedEvent> {
    const seq = ++this.#seq;
    const frame = JSON.stringify({ type: "event", seq, reason: event.reason, data: event.data });
    const recipients = event.recipients ? [...new Set(event.recipients)] : null;
    const sql = this.ctx.storage.sql;
    sql.exec(
      "INSERT INTO events (seq, recipients, frame) VALUES (?, ?, ?)",
      seq,
      recipients ? JSON.stringify(recipients) : null,
      frame,
    );
    sql.exec("DELETE FROM events WHERE seq <= ?", seq - EVENT_BUFFER_SIZE);
    const sockets = recipients
      ? recipients.flatMap((hotkey) => this.ctx.getWebSockets(hotkeyTag(hotkey)))
      : this.ctx.getWebSockets(ALL_MINERS);
    let delivered = 0;
    // A socket closing meanwhile misses the frame; its miner resumes from its last seq.
    for (const ws of sockets) if (sendText(ws, frame)) delivered++;
    return { seq, delivered };
  }

  /** Open miner sockets (RPC, for operators and tests), optionally of one hotkey. */
  async connections(hotkey?: string): Promise<MinerConnection[]> {
    return this.ctx.getWebSockets(hotkey ? hotkeyTag(hotkey) : ALL_MINERS).map((ws) => {
      const { hotkey: owner, connectedAt } = ws.deserializeAttachment() as MinerAttachment;
      return { hotkey: owner, connectedAt };
    });
  }

  /** The last sequence number handed out (RPC). */
  async currentSeq(): Promise<number> {
    return this.#seq;
  }

  #oldestSeq(): number {
    return Number(
      this.ctx.storage.sql.exec("SELECT coalesce(min(seq), ?) AS seq FROM events", this.#seq + 1).one().seq,
    );
  }

  /**
   * Replays to `ws` the events after `since` that it missed (up to the seq it joined at;
   * later ones reached it live), in order, then `resumed`; or `resync_required` when some
   * of them have left the buffer (or `since` is from a history this hub does not have).
   */
  #resume(ws: WebSocket, attachment: MinerAttachment, since: unknown): void {
    if (!isSeq(since)) {
      sendJson(ws, { type: "error", reason: "resume needs `seq`: the last event seq received (an integer ≥ 0)" });
      return;
    }
    const until = attachment.joinedSeq;
    if (since > this.#seq || since + 1 < this.#oldestSeq()) {
      sendJson(ws, {
        type: "resync_required",
        seq: this.#seq,
        reason:
          since > this.#seq
            ? `seq ${since} is ahead of this hub (${this.#seq}): its history was reset`
            : `events after ${since} are no longer buffered (the hub keeps the last ${EVENT_BUFFER_SIZE})`,
      });
      return;
    }
    let replayed = 0;
    const rows = this.ctx.storage.sql.exec<{ recipients: string | null; frame: string }>(
      "SELECT recipients, frame FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
      since,
      until,
    );
    for (const row of rows) {
      if (row.recipients !== null && !(JSON.parse(row.recipients) as string[]).includes(attachment.hotkey)) continue;
      if (!sendText(ws, row.frame)) return;
      replayed++;
    }
    sendJson(ws, { type: "resumed", seq: until, data: { since, replayed } });
  }
}
