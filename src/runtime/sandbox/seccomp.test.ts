import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bwrapArgs } from './bwrap.js';
import { createSandbox } from './sandbox.js';
import {
  AUDIT_ARCH_X86_64,
  buildSeccompFilter,
  DENIED_SYSCALLS,
  decodeFilter,
  ENOSYS,
  EPERM,
  encodeFilter,
  evaluateFilter,
  SECCOMP_RET,
  SYSCALL,
  seccompUnsupported,
} from './seccomp.js';

const program = buildSeccompFilter();
const verdict = (nr: number, arg0?: number, arch?: number) => evaluateFilter(program, { nr, arg0, arch });
const DENY = SECCOMP_RET.ERRNO | EPERM;
const ALLOW = SECCOMP_RET.ALLOW;

describe('seccomp filter', () => {
  it('denies the dangerous system calls with EPERM (x86_64 numbers)', () => {
    // A few numbers checked against the kernel's syscall_64.tbl by hand, not taken from the table.
    for (const [name, nr] of [
      ['ptrace', 101],
      ['mount', 165],
      ['unshare', 272],
      ['setns', 308],
      ['bpf', 321],
      ['keyctl', 250],
      ['kexec_load', 246],
      ['perf_event_open', 298],
      ['io_uring_setup', 425],
    ] as const) {
      assert.equal(DENIED_SYSCALLS[name], nr, name);
      assert.equal(verdict(nr), DENY, name);
    }
    for (const [name, nr] of Object.entries(DENIED_SYSCALLS)) assert.equal(verdict(nr), DENY, name);
  });

  it('allows what runtimes need: read, write, mmap, futex, epoll, getpid, fork, execve, seccomp itself', () => {
    for (const nr of [0, 1, 3, 9, 39, 57, 59, 202, 232, 233, 257, 281, 291, 302, 317, 334, 439]) {
      assert.equal(verdict(nr), ALLOW, `syscall ${nr}`);
    }
  });

  it('clone: plain forks and threads pass, namespace flags are denied; clone3 gets ENOSYS', () => {
    const CLONE_THREAD_FLAGS = 0x3d0f00; // glibc's pthread_create
    const SIGCHLD = 17;
    assert.equal(verdict(SYSCALL.clone, CLONE_THREAD_FLAGS), ALLOW);
    assert.equal(verdict(SYSCALL.clone, 0x01200000 | SIGCHLD), ALLOW); // fork()
    for (const flag of [0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x02000000, 0x04000000, 0x08000000])
      assert.equal(verdict(SYSCALL.clone, flag | SIGCHLD), DENY, `flag 0x${flag.toString(16)}`);
    assert.equal(verdict(SYSCALL.clone3), SECCOMP_RET.ERRNO | ENOSYS);
  });

  it('personality: the query and Docker’s allowed values pass, others are denied', () => {
    for (const p of [0, 8, 0x20000, 0x20008, 0xffffffff]) assert.equal(verdict(SYSCALL.personality, p), ALLOW);
    assert.equal(verdict(SYSCALL.personality, 0x0400000), DENY); // READ_IMPLIES_EXEC
  });

  it('kills another ABI and denies the x32 syscall table', () => {
    assert.equal(verdict(39, 0, 0x40000003 /* AUDIT_ARCH_I386 */), SECCOMP_RET.KILL_PROCESS);
    assert.equal(verdict(0x40000000 | 39), DENY);
    assert.equal(verdict(39, 0, AUDIT_ARCH_X86_64), ALLOW);
  });

  it('encodes as struct sock_filter (8 bytes, little-endian) and decodes back', () => {
    const bytes = encodeFilter(program);
    assert.equal(bytes.length, program.length * 8);
    assert.deepEqual(decodeFilter(bytes), program);
    // The first instruction loads seccomp_data.arch: BPF_LD|BPF_W|BPF_ABS, k = 4.
    assert.deepEqual([...bytes.subarray(0, 8)], [0x20, 0, 0, 0, 4, 0, 0, 0]);
    // The kernel's limit is 4096 instructions; every jump stays in the program.
    assert.ok(program.length < 200);
    program.forEach((ins, i) => {
      if ((ins.code & 0x07) === 0x05) assert.ok(i + 1 + Math.max(ins.jt, ins.jf) < program.length, `jump at ${i}`);
    });
    assert.equal(program.at(-1)!.code, 0x06, 'the program ends with a return');
  });

  it('is for x86_64 only', () => {
    assert.equal(seccompUnsupported('x64'), undefined);
    assert.match(seccompUnsupported('arm64') ?? '', /x86_64/);
  });

  it('bwrap loads it by descriptor', () => {
    const args = bwrapArgs({
      argv: ['/bin/true'],
      cwd: '/',
      network: 'egress',
      tmpSizeBytes: 1,
      system: [],
      files: [],
      binds: [],
      seccompFd: 7,
    });
    const at = args.indexOf('--seccomp');
    assert.deepEqual(args.slice(at, at + 2), ['--seccomp', '7']);
    assert.ok(at < args.indexOf('--'), 'a bwrap option, not part of the command');
  });

  it('loads in the real sandbox; a bubblewrap without --seccomp leaves instances sandboxed, with a warning', () => {
    const real = createSandbox();
    try {
      assert.equal(real.isolated, true, real.warnings.join('; '));
      assert.equal(real.seccomp, true, real.warnings.join('; '));
    } finally {
      real.close();
    }
    // A bwrap that refuses the option, as one built without it would.
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-seccomp-test-'));
    const fake = join(dir, 'bwrap');
    writeFileSync(
      fake,
      `#!/bin/sh\nfor a in "$@"; do [ "$a" = --seccomp ] && { echo "bwrap: Unknown option --seccomp" >&2; exit 1; }; done\nexec bwrap "$@"\n`,
    );
    chmodSync(fake, 0o755);
    const old = createSandbox({ bwrapPath: fake });
    try {
      assert.equal(old.isolated, true, old.warnings.join('; '));
      assert.equal(old.seccomp, false);
      assert.match(
        old.warnings.join('\n'),
        /WITHOUT a seccomp filter: bubblewrap cannot load it here \(bwrap: Unknown option --seccomp\)/,
      );
    } finally {
      old.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
