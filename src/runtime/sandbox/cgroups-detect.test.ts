import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readKey } from './cgroups.js';
import { cgroupDir, chooseLayout, parseMountinfo, parseProcCgroup } from './cgroups-detect.js';

// Captured on the CI machine: cgroup v1 controllers plus a v2 mount without controllers.
const HYBRID_MOUNTINFO = `25 20 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:24 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
28 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
31 25 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
32 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/5126
2:cpuacct:/
1:cpu:/
0::/`;

describe('cgroup detection', () => {
  it('parses cgroup mounts with their controllers', () => {
    const mounts = parseMountinfo(HYBRID_MOUNTINFO);
    assert.equal(mounts.length, 7);
    assert.deepEqual(mounts[2], { dir: '/sys/fs/cgroup/memory', root: '/', version: 1, controllers: ['memory'] });
    assert.deepEqual(mounts[5]!.controllers, [], 'named hierarchies carry no controller');
    assert.equal(mounts[6]!.version, 2);
  });

  it('parses /proc/self/cgroup, splitting co-mounted controllers', () => {
    const own = parseProcCgroup('4:cpu,cpuacct:/a\n3:memory:/b\n0::/c\n');
    assert.deepEqual([own.get('cpu'), own.get('cpuacct'), own.get('memory'), own.get('')], ['/a', '/a', '/b', '/c']);
  });

  it('chooses v1 on a hybrid machine whose v2 mount has no controllers, nesting below our own cgroup', () => {
    const layout = chooseLayout(parseMountinfo(HYBRID_MOUNTINFO), parseProcCgroup(HYBRID_CGROUP), () => []);
    assert.deepEqual(layout, {
      version: 1,
      dirs: {
        memory: '/sys/fs/cgroup/memory/process_api/5126',
        cpu: '/sys/fs/cgroup/cpu',
        cpuacct: '/sys/fs/cgroup/cpuacct',
        pids: '/sys/fs/cgroup/pids',
        freezer: '/sys/fs/cgroup/freezer',
      },
    });
  });

  it('chooses v2 when the unified hierarchy offers memory, cpu and pids', () => {
    const mounts = parseMountinfo('30 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate');
    const layout = chooseLayout(mounts, parseProcCgroup('0::/system.slice/nimbus.service\n'), (dir) =>
      dir === '/sys/fs/cgroup/system.slice/nimbus.service' ? ['cpuset', 'cpu', 'io', 'memory', 'pids'] : [],
    );
    assert.deepEqual(layout, { version: 2, dir: '/sys/fs/cgroup/system.slice/nimbus.service' });
  });

  it('says what is missing when neither works', () => {
    const mounts = parseMountinfo(HYBRID_MOUNTINFO).filter((m) => !m.controllers.includes('pids'));
    const layout = chooseLayout(mounts, parseProcCgroup(HYBRID_CGROUP), () => []);
    assert.equal(layout.version, 0);
    assert.match((layout as { reason: string }).reason, /cgroup v1 lacks pids/);
  });

  it('maps a path under a mount that exposes a sub-tree (cgroup namespaces)', () => {
    const mount = { dir: '/sys/fs/cgroup/memory', root: '/docker/abc', version: 1 as const, controllers: ['memory'] };
    assert.equal(cgroupDir(mount, '/docker/abc/x'), '/sys/fs/cgroup/memory/x');
    assert.equal(cgroupDir(mount, '/'), '/sys/fs/cgroup/memory');
  });

  it('reads counters from key-value files (memory.oom_control, memory.events, cpu.stat)', () => {
    assert.equal(readKey('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n', 'oom_kill'), 2);
    assert.equal(readKey('low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n', 'oom_kill'), 1);
    assert.equal(readKey('usage_usec 1500\n', 'oom_kill'), 0);
  });
});
