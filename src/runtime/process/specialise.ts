/**
 * Turns a warm pool cell (cell-pool.ts) into an instance of one function, as isolated as a
 * spawned one: the host links the function's files into the cell's own code dir (bound read-only
 * in its sandbox, empty until now), gives its cgroup the function's limits, and sends the guest
 * the environment a spawned instance would get (planSpawn's), which replaces the cell's whole
 * environment. The guest then imports the module and reports ready on READY_FD.
 */
import { copyFileSync, linkSync, mkdirSync, readdirSync, readlinkSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { SpecialiseMessage } from '../guest/protocol.js';
import type { InstanceLimits } from '../sandbox/limits.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { InstanceSpec } from '../types.js';
import type { CellShape, Launched } from './launch.js';
import { planSpawn, type SpawnContext } from './spawn.js';

/** The cell shape `spec` needs, or undefined when no cell can run it (app mode, a V8 snapshot). */
export function cellShapeOf(spec: InstanceSpec): CellShape | undefined {
  if (spec.kind !== 'node' || !spec.entry || spec.snapshotBlob) return undefined;
  return { memoryMb: spec.memoryMb, network: spec.network ?? 'egress' };
}

/**
 * Mirrors `from` into `to` with hard links (a copy across file systems): the artifact is
 * immutable, so links cost nothing and the function sees the same bytes as a bind mount would.
 */
export function linkTree(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const dest = join(to, entry.name);
    if (entry.isDirectory()) {
      mkdirSync(dest, { mode: statSync(source).mode & 0o7777 });
      linkTree(source, dest);
    } else if (entry.isSymbolicLink()) symlinkSync(readlinkSync(source), dest);
    else {
      try {
        linkSync(source, dest);
      } catch (err) {
        if (!['EXDEV', 'EPERM', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
        copyFileSync(source, dest);
      }
    }
  }
}

/**
 * Gives `cell` the code and limits of `spec` and returns the message that makes it the function.
 * Throws when that fails (the caller then kills the cell and spawns instead).
 */
export function prepareCell(
  cell: Launched,
  spec: InstanceSpec,
  sandbox: Sandbox,
  ctx: SpawnContext,
): { message: SpecialiseMessage; limits?: InstanceLimits } {
  // Sandboxed, the code dir is the cell's own, bound where a spawned instance has its code;
  // unsandboxed, the guest reads the artifact where it is, as a spawned one does.
  if (cell.codeDir) linkTree(spec.artifactDir, cell.codeDir);
  const view = cell.codeDir ? cell.view : { ...cell.view, artifactDir: spec.artifactDir };
  const plan = planSpawn(spec, view, ctx);
  const limits = cell.cgroup ? sandbox.limitsFor(spec.memoryMb, spec.cpu) : undefined;
  if (limits) cell.cgroup!.setLimits(limits);
  return { message: { env: plan.env, cwd: plan.cwd }, limits };
}

/** Sends the specialise message (the cell's stdin is closed after it). */
export function sendSpecialise(cell: Launched, message: SpecialiseMessage): void {
  cell.stdin?.end(`${JSON.stringify(message)}\n`);
}
