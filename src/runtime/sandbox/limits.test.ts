import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heapLimitMb, limitsFor } from './limits.js';

describe('limitsFor', () => {
  it('makes memory a hard limit of exactly the manifest size', () => {
    assert.equal(limitsFor(128, undefined).memoryBytes, 128 * 1024 * 1024);
  });

  it('scales CPU with memory like Lambda (1769 MB per core), with a floor', () => {
    assert.equal(limitsFor(1769, undefined).cpu, 1);
    assert.equal(limitsFor(3538, undefined).cpuQuotaUs, 200_000);
    assert.equal(limitsFor(128, undefined).cpu, 0.5, 'the floor');
    assert.equal(limitsFor(128, undefined, { minCpu: 0.01 }).cpu, 128 / 1769);
  });

  it('takes cpu when set, whatever the memory', () => {
    const l = limitsFor(4096, 0.25);
    assert.deepEqual([l.cpu, l.cpuQuotaUs, l.cpuPeriodUs], [0.25, 25_000, 100_000]);
    assert.equal(limitsFor(128, 0.001).cpuQuotaUs, 1000, 'the kernel minimum quota is 1 ms');
  });

  it('boosts the quota while starting, never below the steady one', () => {
    assert.equal(limitsFor(256, 0.5, { startCpu: 2 }).startCpuQuotaUs, 200_000);
    assert.equal(limitsFor(256, 4, { startCpu: 2 }).startCpuQuotaUs, 400_000);
  });

  it('caps processes and threads', () => {
    assert.equal(limitsFor(256, undefined).pidsMax, 256);
    assert.equal(limitsFor(256, undefined, { pidsMax: 32 }).pidsMax, 32);
  });
});

describe('heapLimitMb', () => {
  it('keeps V8 below the cgroup limit, with a floor', () => {
    assert.equal(heapLimitMb(256), 192);
    assert.equal(heapLimitMb(16), 16);
  });
});
