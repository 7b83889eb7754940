/**
 * The seccomp filter of every sandboxed instance, as the classic-BPF program bubblewrap loads with
 * `--seccomp FD` (no libseccomp binding is needed: the program is a short list of comparisons).
 *
 * A deny list, after Docker's default profile: the system calls a function has no business making
 * — they change the kernel or the machine, reach into other processes, or open kernel attack
 * surface that namespaces do not cover — fail with EPERM; everything else is allowed. Pure: the
 * program is built and decoded as data, and `evaluateFilter` runs it the way the kernel does, so
 * seccomp.test.ts checks verdicts for real syscall numbers.
 */

/** x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl), denied with EPERM. */
export const DENIED_SYSCALLS: Readonly<Record<string, number>> = {
  // Reading or writing other processes' memory and state.
  ptrace: 101,
  process_vm_readv: 310,
  process_vm_writev: 311,
  kcmp: 312,
  pidfd_getfd: 438,
  process_madvise: 440,
  // Mounts (old and new API): the instance's view of the filesystem is fixed by bubblewrap.
  mount: 165,
  umount2: 166,
  pivot_root: 155,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  mount_setattr: 442,
  // New namespaces (a user namespace gives back capabilities inside it) and joining others'.
  unshare: 272,
  setns: 308,
  // The machine: swap, reboot, kernel images and modules, accounting, quotas, the clock.
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  kexec_load: 246,
  kexec_file_load: 320,
  init_module: 175,
  finit_module: 313,
  delete_module: 176,
  create_module: 174,
  get_kernel_syms: 177,
  query_module: 178,
  acct: 163,
  quotactl: 179,
  quotactl_fd: 443,
  settimeofday: 164,
  clock_settime: 227,
  adjtimex: 159,
  clock_adjtime: 305,
  syslog: 103,
  iopl: 172,
  ioperm: 173,
  vhangup: 153,
  nfsservctl: 180,
  _sysctl: 156,
  uselib: 134,
  ustat: 136,
  sysfs: 139,
  lookup_dcookie: 212,
  // Kernel attack surface that namespaces do not fence: BPF programs, perf, userfaultfd, the
  // keyring (not namespaced), file handles (bypass the mount view), io_uring (Docker denies it
  // since 25.0; libuv falls back to its thread pool).
  bpf: 321,
  perf_event_open: 298,
  userfaultfd: 323,
  keyctl: 250,
  add_key: 248,
  request_key: 249,
  open_by_handle_at: 304,
  name_to_handle_at: 303,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
};

/** Syscalls allowed only with some arguments. */
export const SYSCALL = { clone: 56, clone3: 435, personality: 135 } as const;

/**
 * clone flags that make namespaces (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET):
 * clone with any of them fails with EPERM, as unshare does. clone3 passes its flags in memory,
 * which a filter cannot read, so it fails with ENOSYS and glibc (≥ 2.34) falls back to clone —
 * Docker's approach; threads and fork keep working.
 */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** personality() values allowed (Docker's): PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE, both, query. */
export const ALLOWED_PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff] as const;

export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** Syscall numbers with this bit are the x32 ABI: a second syscall table, denied whole. */
export const X32_SYSCALL_BIT = 0x40000000;

export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  ERRNO: 0x00050000,
  ALLOW: 0x7fff0000,
} as const;
export const EPERM = 1;
export const ENOSYS = 38;

/** One classic-BPF instruction (struct sock_filter). */
export interface BpfInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K = 0x06; // BPF_RET | BPF_K

/** struct seccomp_data offsets: nr, arch, then the arguments (low 32 bits of args[0] on little-endian). */
const OFFSET = { nr: 0, arch: 4, arg0Low: 16 } as const;

type Label = 'allow' | 'deny' | 'enosys' | 'clone' | 'personality';
type Jump = number | Label;
interface Draft {
  code: number;
  k: number;
  jt?: Jump;
  jf?: Jump;
  label?: Label;
}

/** The filter program: x86_64 only, namespace-making and dangerous syscalls denied, the rest allowed. */
export function buildSeccompFilter(denied: Iterable<number> = Object.values(DENIED_SYSCALLS)): BpfInstruction[] {
  const drafts: Draft[] = [
    { code: LD_W_ABS, k: OFFSET.arch },
    // Another ABI (i386 through int 0x80) has other numbers: a filter for one cannot judge it.
    { code: JEQ_K, k: AUDIT_ARCH_X86_64, jt: 1, jf: 0 },
    { code: RET_K, k: SECCOMP_RET.KILL_PROCESS },
    { code: LD_W_ABS, k: OFFSET.nr },
    { code: JGE_K, k: X32_SYSCALL_BIT, jt: 'deny' },
    { code: JEQ_K, k: SYSCALL.clone, jt: 'clone' },
    { code: JEQ_K, k: SYSCALL.clone3, jt: 'enosys' },
    { code: JEQ_K, k: SYSCALL.personality, jt: 'personality' },
    ...[...new Set(denied)].sort((a, b) => a - b).map((nr): Draft => ({ code: JEQ_K, k: nr, jt: 'deny' })),
    { code: RET_K, k: SECCOMP_RET.ALLOW },
    // Jumps go forward only: the argument checks first, the shared verdicts last.
    { code: LD_W_ABS, k: OFFSET.arg0Low, label: 'clone' },
    { code: JSET_K, k: CLONE_NAMESPACE_FLAGS, jt: 'deny', jf: 'allow' },
    { code: LD_W_ABS, k: OFFSET.arg0Low, label: 'personality' },
    ...ALLOWED_PERSONALITIES.map((p): Draft => ({ code: JEQ_K, k: p, jt: 'allow' })),
    // (a personality not allowed falls through to deny)
    { code: RET_K, k: SECCOMP_RET.ERRNO | EPERM, label: 'deny' },
    { code: RET_K, k: SECCOMP_RET.ALLOW, label: 'allow' },
    { code: RET_K, k: SECCOMP_RET.ERRNO | ENOSYS, label: 'enosys' },
  ];
  const at = new Map<Label, number>();
  for (const [i, d] of drafts.entries()) if (d.label) at.set(d.label, i);
  // Jumps are relative to the next instruction, forward only, at most 255 ahead.
  const resolve = (jump: Jump | undefined, from: number): number => {
    if (jump === undefined) return 0;
    if (typeof jump === 'number') return jump;
    const offset = at.get(jump)! - from - 1;
    if (offset < 0 || offset > 255) throw new Error(`seccomp filter: jump to ${jump} out of range (${offset})`);
    return offset;
  };
  return drafts.map((d, i) => ({ code: d.code, k: d.k >>> 0, jt: resolve(d.jt, i), jf: resolve(d.jf, i) }));
}

/** The program as bubblewrap reads it from its descriptor: 8 bytes per instruction, host order (little-endian). */
export function encodeFilter(program: BpfInstruction[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  program.forEach((ins, i) => {
    buf.writeUInt16LE(ins.code, i * 8);
    buf.writeUInt8(ins.jt, i * 8 + 2);
    buf.writeUInt8(ins.jf, i * 8 + 3);
    buf.writeUInt32LE(ins.k, i * 8 + 4);
  });
  return buf;
}

export function decodeFilter(buf: Buffer): BpfInstruction[] {
  const out: BpfInstruction[] = [];
  for (let o = 0; o + 8 <= buf.length; o += 8)
    out.push({
      code: buf.readUInt16LE(o),
      jt: buf.readUInt8(o + 2),
      jf: buf.readUInt8(o + 3),
      k: buf.readUInt32LE(o + 4),
    });
  return out;
}

/**
 * Runs `program` on one system call as the kernel would (only the instructions the builder emits)
 * and returns the SECCOMP_RET_* value.
 */
export function evaluateFilter(program: BpfInstruction[], call: { nr: number; arch?: number; arg0?: number }): number {
  const data: Record<number, number> = {
    [OFFSET.nr]: call.nr >>> 0,
    [OFFSET.arch]: call.arch ?? AUDIT_ARCH_X86_64,
    [OFFSET.arg0Low]: (call.arg0 ?? 0) >>> 0,
  };
  let acc = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc]!;
    if (code === LD_W_ABS) {
      if (!(k in data)) throw new Error(`seccomp filter: load from unexpected offset ${k}`);
      acc = data[k]!;
    } else if (code === RET_K) return k;
    else if (code === JEQ_K || code === JGE_K || code === JSET_K) {
      const taken = code === JEQ_K ? acc === k : code === JGE_K ? acc >= k : (acc & k) >>> 0 !== 0;
      pc += taken ? jt : jf;
    } else throw new Error(`seccomp filter: unexpected opcode 0x${code.toString(16)} at ${pc}`);
  }
  throw new Error('seccomp filter: fell off the end');
}

/** Why this machine gets no filter, or undefined when it can (the numbers above are x86_64's). */
export function seccompUnsupported(arch: string = process.arch): string | undefined {
  return arch === 'x64' ? undefined : `the seccomp filter knows only x86_64 system calls, this is ${arch}`;
}
