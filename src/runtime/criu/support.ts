/**
 * What decides whether a revision's cold starts can be CRIU restores: the machine's verdict
 * (detect.ts), asked once and waited on by a start only briefly, and the revision's own fields.
 */
import type { InstanceSpec } from '../types.js';
import type { CriuSupport } from './detect.js';
import { NO_SLIRP_REASON } from './network.js';

/** Whether a revision's cold starts are CRIU restores, as `nimbus get` shows it. */
export interface CheckpointStatus {
  /** True once cold starts restore the image. */
  restores: boolean;
  /** `ready`: image made; `pending`: being made (or not yet: no instance started); `failed`/`unsupported`: not used. */
  state: 'ready' | 'pending' | 'failed' | 'unsupported';
  /** Why restores are not in use. */
  reason?: string;
  image?: { bytes: number; dumpMs: number; createdAt: string };
  /** Instances restored from it by this node process. */
  restored: number;
}

/** The spec fields that decide whether CRIU applies. */
export type CheckpointSubject = Pick<InstanceSpec, 'kind' | 'network' | 'checkpoint'>;

/**
 * The reason restores cannot be used for a spec, or undefined when they can. `slirp`: whether
 * slirp4netns is installed, which restored `network: egress` instances need for their network.
 */
export function unsupportedReason(
  subject: CheckpointSubject,
  support: CriuSupport,
  sandboxed: boolean,
  slirp: boolean,
): string | undefined {
  if (!support.available) return `CRIU is not available: ${support.reason}`;
  if (subject.kind !== 'app') return 'CRIU restores are for app mode (node functions use V8 snapshots)';
  if (subject.network !== 'none' && !slirp) return NO_SLIRP_REASON;
  if (!sandboxed) return 'CRIU restores run only sandboxed (bubblewrap and cgroups)';
  return undefined;
}

/** What `support` says while the detection runs: not usable yet. */
export const DETECTING: CriuSupport = { available: false, reason: 'still checking whether CRIU works on this machine' };

/** The machine's verdict on CRIU, asked on first need and kept. */
export interface Verdict {
  /** The verdict, or DETECTING (CRIU not usable yet) while it is asked; asking starts here. */
  now(): CriuSupport;
  /** The verdict once it is in, undefined before. */
  known(): CriuSupport | undefined;
  /** Resolves with the verdict (asking if nobody did). */
  settled(): Promise<CriuSupport>;
  /** What is being asked now, if anything (settles when the verdict is in). */
  pending(): Promise<CriuSupport> | undefined;
  /** The verdict if it is in within `ms` (asking if nobody did), else undefined; the asking goes on. */
  within(ms: number): Promise<CriuSupport | undefined>;
}

/** `given`: a verdict known in advance (tests); `detect`: how the machine is asked. Never rejects. */
export function createVerdict(given: CriuSupport | undefined, detect: () => Promise<CriuSupport>): Verdict {
  let detected = given;
  let detecting: Promise<CriuSupport> | undefined;
  const settled = (): Promise<CriuSupport> => {
    if (detected) return Promise.resolve(detected);
    detecting ??= detect()
      .catch((err: Error): CriuSupport => ({ available: false, reason: `CRIU detection failed: ${err.message}` }))
      .then((s) => (detected = s));
    return detecting;
  };
  return {
    now() {
      if (detected) return detected;
      void settled();
      return DETECTING;
    },
    known: () => detected,
    settled,
    pending: () => detecting,
    within(ms) {
      if (detected) return Promise.resolve(detected);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), ms);
      });
      return Promise.race([settled(), late]).finally(() => clearTimeout(timer));
    },
  };
}
