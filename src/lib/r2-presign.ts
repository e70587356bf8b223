/**
 * @module Presigned R2 download URLs (S3 API, SigV4 in the query string, via aws4fetch),
 * and where CNCF Distribution's S3 storage driver keeps a blob, so the registry front can
 * send a miner straight to R2 for the bytes of a layer.
 *
 * Distribution's layout (registry/storage/paths.go, the same for every driver): a blob
 * with digest `sha256:{hex}` is the object
 * `{rootdirectory}/docker/registry/v2/blobs/sha256/{hex[0..2]}/{hex}/data`; the S3 driver
 * drops the leading slash, so with an empty rootdirectory the key starts `docker/`.
 */
import { AwsClient } from "aws4fetch";

export interface PresignTarget {
  /** The S3 endpoint, e.g. `https://<account>.r2.cloudflarestorage.com`. */
  endpoint: string;
  bucket: string;
  key: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Seconds the URL stays valid. */
  expiresS: number;
}

const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/;

/** The object key of a blob under Distribution's layout, or null for a digest it would not store. */
export function distributionBlobKey(root: string, digest: string): string | null {
  const hex = SHA256_DIGEST.exec(digest)?.[1];
  if (!hex) return null;
  const path = `docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
  return root ? `${root}/${path}` : path;
}

/** A GET URL for the object, path-style, signed for `expiresS` seconds. */
export async function presignGet(target: PresignTarget, now = new Date()): Promise<string> {
  const client = new AwsClient({
    accessKeyId: target.accessKeyId,
    secretAccessKey: target.secretAccessKey,
    service: "s3",
    region: "auto",
  });
  const key = target.key.split("/").map(encodeURIComponent).join("/");
  const url = new URL(`${target.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(target.bucket)}/${key}`);
  url.searchParams.set("X-Amz-Expires", String(target.expiresS));
  const datetime = now.toISOString().replace(/[:-]|\.\d{3}/g, "");
  const signed = await client.sign(url.toString(), { method: "GET", aws: { signQuery: true, datetime } });
  return signed.url;
}
