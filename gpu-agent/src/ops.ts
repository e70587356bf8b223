/**
 * @module What each job op does, on one device: validate the payload, refuse profiles too
 * large for the CPU reference, and run the protocol (src/gpu-proof) on the device.
 */

import type { z } from "zod";
import {
  encryptForDevice,
  ProofShapeError,
  prove,
  randomIndex,
  resolve,
  verifyProof,
} from "../../src/gpu-proof/protocol.ts";
import { selfTest } from "../../src/gpu-proof/vectors.ts";
import { type GpuOp, opPayloadSchemas } from "../../src/schemas/gpu-proof.ts";
import type { Device } from "./engines.ts";

/** An error to report as the job's failure (bad payload, unsupported profile, wrong proof shape). */
export class OpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OpError";
  }
}

function parse<S extends z.ZodType>(op: GpuOp, schema: S, payload: unknown): z.output<S> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new OpError(`invalid ${op} payload: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  return parsed.data;
}

function resolveFor(device: Device, params: Parameters<typeof resolve>[0], cpuMaxN: number) {
  const resolved = resolve(params);
  if (device.kind === "cpu" && resolved.shape.n > cpuMaxN) {
    throw new OpError(`profile ${params.profile} (n = ${resolved.shape.n}) is too large for CPU mode`);
  }
  return resolved;
}

export async function runOp(op: GpuOp, payload: unknown, device: Device, cpuMaxN: number): Promise<unknown> {
  const started = performance.now();
  switch (op) {
    case "prove": {
      const resolved = resolveFor(device, parse("prove", opPayloadSchemas.prove, payload), cpuMaxN);
      const { commitments } = await prove(resolved, device.execute);
      return { commitments, elapsed_ms: Math.round(performance.now() - started) };
    }
    case "verify": {
      const input = parse("verify", opPayloadSchemas.verify, payload);
      const resolved = resolveFor(device, input, cpuMaxN);
      try {
        return await verifyProof(resolved, input.commitments, input.check_index, device.execute);
      } catch (error) {
        if (error instanceof ProofShapeError) throw new OpError(error.message);
        throw error;
      }
    }
    case "encrypt": {
      const input = parse("encrypt", opPayloadSchemas.encrypt, payload);
      const resolved = resolveFor(device, input, cpuMaxN);
      const secretIndex = randomIndex(resolved.shape.matrices);
      return { ciphertext: await encryptForDevice(resolved, input.plaintext, secretIndex, device.execute) };
    }
    case "selftest": {
      parse("selftest", opPayloadSchemas.selftest, payload);
      const report = await selfTest(device.execute);
      return { passed: report.passed, vectors: report.vectors };
    }
  }
}
