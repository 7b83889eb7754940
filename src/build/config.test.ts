import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SourceFile } from './archive.js';
import { unpackArchive } from './archive.js';
import { resolveConfig } from './config.js';
import { fixtureDir, packDir } from './test-support.js';

const src = (files: Record<string, string>): SourceFile[] =>
  Object.entries(files).map(([path, text]) => ({ path, mode: 0o644, content: Buffer.from(text) }));
const withYaml = (yaml: string, extra: Record<string, string> = { 'index.ts': '' }) =>
  src({ 'nimbus.yaml': yaml, ...extra });
const manifestError = (message: RegExp | string) => ({
  code: 'NIMBUS_ERR_INVALID_MANIFEST',
  message: typeof message === 'string' ? message : message,
});
const resolve = (files: SourceFile[], overrides: Record<string, unknown> = {}, hint = 'fn') =>
  resolveConfig(files, overrides, hint);

describe('resolveConfig', () => {
  it('applies the defaults to a bare TypeScript function', async () => {
    const files = await unpackArchive(await packDir(fixtureDir('ts-fetch')));
    assert.deepEqual(resolveConfig(files, {}, 'ts-fetch'), {
      name: 'ts-fetch',
      runtime: 'node',
      handler: 'index.ts',
      env: {},
      memory: 256,
      network: 'egress',
      timeout: 30,
      concurrency: 10,
      scale: {
        min: 0,
        max: 10,
        idleTimeout: 300,
        initial: 0,
        metric: 'concurrency',
        target: 10,
        targetUtilization: 0.7,
        window: 60,
        scaleDownDelay: 0,
      },
    });
  });

  it('reads an app-mode nimbus.yaml: command split into argv, env values as strings, "5m" as 300 s', async () => {
    const files = await unpackArchive(await packDir(fixtureDir('app-python')));
    assert.deepEqual(resolveConfig(files, {}, 'ignored-hint'), {
      name: 'py-app',
      runtime: 'app',
      command: ['python3', 'server.py', '--quiet'],
      env: { GREETING: 'hi', WORKERS: '2' },
      memory: 128,
      network: 'egress',
      timeout: 30,
      concurrency: 10,
      scale: {
        min: 0,
        max: 3,
        idleTimeout: 300,
        initial: 0,
        metric: 'concurrency',
        target: 10,
        targetUtilization: 0.7,
        window: 60,
        scaleDownDelay: 0,
      },
    });
  });

  it('lets overrides win, merging env key by key and scale field by field', () => {
    const files = withYaml('name: from-file\nmemory: 512\nenv: { A: a, B: b }\nscale: { max: 5, idleTimeout: 60 }\n');
    const config = resolve(files, { name: 'from-flags', memory: 1024, env: { B: 'B2', C: 'c' }, scale: { min: 1 } });
    assert.equal(config.name, 'from-flags');
    assert.equal(config.memory, 1024);
    assert.deepEqual(config.env, { A: 'a', B: 'B2', C: 'c' });
    assert.deepEqual(config.scale, {
      min: 1,
      max: 5,
      idleTimeout: 60,
      initial: 1,
      metric: 'concurrency',
      target: 10,
      targetUtilization: 0.7,
      window: 60,
      scaleDownDelay: 0,
    });
  });

  it('takes the name from overrides, then the manifest, then the hint', () => {
    assert.equal(resolve(withYaml('name: manifest-name\n'), {}, 'hint').name, 'manifest-name');
    assert.equal(resolve(src({ 'index.js': '' }), {}, 'hint').name, 'hint');
    assert.equal(resolve(withYaml('name: manifest-name\n'), { name: 'flag-name' }, 'hint').name, 'flag-name');
  });

  it('rejects a missing or invalid name with NIMBUS_ERR_INVALID_NAME', () => {
    assert.throws(() => resolveConfig(src({ 'index.js': '' }), {}), { code: 'NIMBUS_ERR_INVALID_NAME' });
    assert.throws(() => resolve(src({ 'index.js': '' }), {}, 'My_Function'), {
      code: 'NIMBUS_ERR_INVALID_NAME',
      message: /Invalid function name "My_Function"/,
    });
    assert.throws(() => resolve(withYaml('name: 9lives\n')), { code: 'NIMBUS_ERR_INVALID_NAME' });
  });

  it('reads snapshot: true / required / false, stores auto as unset, and rejects other values', () => {
    assert.equal(resolve(withYaml('snapshot: true\n')).snapshot, true);
    assert.equal(resolve(withYaml('snapshot: false\n'), { snapshot: 'required' }).snapshot, 'required');
    // false opts out of automatic snapshots, so it is kept; auto is the default, kept as unset.
    assert.equal(resolve(withYaml('snapshot: false\n')).snapshot, false);
    assert.equal('snapshot' in resolve(withYaml('snapshot: auto\n')), false);
    assert.equal('snapshot' in resolve(withYaml('name: x\n')), false);
    assert.throws(
      () => resolve(withYaml('snapshot: yes please\n')),
      manifestError(/snapshot: expected true, false, "required" or "auto"/),
    );
  });

  it('reads nimbus.json, and refuses two manifests', () => {
    const files = src({ 'nimbus.json': '{"timeout": 60}', 'index.js': '' });
    assert.equal(resolve(files).timeout, 60);
    assert.throws(
      () => resolve(src({ 'nimbus.json': '{}', 'nimbus.yaml': '', 'index.js': '' })),
      manifestError(/keep only one manifest/),
    );
  });

  it('treats an empty manifest and null fields as unset', () => {
    assert.equal(resolve(withYaml('')).memory, 256);
    assert.deepEqual(resolve(withYaml('env:\nmemory:\n')).env, {});
  });

  describe('syntax errors name the file, line and column', () => {
    it('YAML (bad-manifest fixture)', async () => {
      const files = await unpackArchive(await packDir(fixtureDir('bad-manifest')));
      assert.throws(
        () => resolveConfig(files, {}, 'x'),
        (err: { code: string; message: string; details: { file: string; line: number } }) => {
          assert.equal(err.code, 'NIMBUS_ERR_INVALID_MANIFEST');
          assert.match(err.message, /^nimbus\.yaml:5:8: Nested mappings are not allowed/);
          assert.deepEqual([err.details.file, err.details.line], ['nimbus.yaml', 5]);
          return true;
        },
      );
    });
    it('JSON', () => {
      const files = src({ 'nimbus.json': '{\n  "memory": 512,\n  "timeout": 30,,\n}', 'index.js': '' });
      assert.throws(() => resolve(files), manifestError(/^nimbus\.json:3:\d+: /));
    });
    it('a manifest that is not a mapping', () => {
      assert.throws(() => resolve(withYaml('- a\n- b\n')), manifestError(/^nimbus\.yaml: expected a mapping/));
    });
  });

  describe('field checks', () => {
    it('names the field, the expected type and the value, with the manifest line', () => {
      assert.throws(
        () => resolve(withYaml('name: ok\nmemory: lots\n')),
        manifestError('nimbus.yaml:2: memory: expected an integer from 64 to 10240, got "lots"'),
      );
      assert.throws(
        () => resolve(src({ 'index.js': '' }), { timeout: 901 }),
        manifestError('config overrides: timeout: expected an integer from 1 to 900, got 901'),
      );
      assert.throws(
        () => resolve(withYaml('concurrency: 0\n')),
        manifestError(/concurrency: expected an integer from 1 to 1000, got 0/),
      );
      assert.throws(() => resolve(withYaml('memory: 128.5\n')), manifestError(/memory: expected an integer/));
      assert.throws(
        () => resolve(withYaml('runtime: python\n')),
        manifestError(/runtime: expected "node", "app" or "isolate", got "python"/),
      );
      assert.throws(
        () => resolve(withYaml('scale:\n  max: 0\n')),
        manifestError(/^nimbus\.yaml:2: scale\.max: expected an integer from 1/),
      );
    });
    it('reads cpu (cores, to the milli-core) and network (none or egress)', () => {
      const config = resolve(withYaml('cpu: 0.25\nnetwork: none\n'));
      assert.deepEqual([config.cpu, config.network], [0.25, 'none']);
      assert.equal(resolve(withYaml('cpu: 0.3333\n')).cpu, 0.333);
      assert.equal(resolve(src({ 'index.js': '' })).cpu, undefined, 'unset: scaled with memory by the runtime');
      assert.equal(resolve(withYaml('network: none\n'), { network: 'egress' }).network, 'egress');
      assert.throws(
        () => resolve(withYaml('cpu: 0\n')),
        manifestError(/cpu: expected a number of CPU cores from 0.05/),
      );
      assert.throws(() => resolve(withYaml('cpu: "1"\n')), manifestError(/cpu: expected a number/));
      assert.throws(
        () => resolve(withYaml('network: host\n')),
        manifestError('nimbus.yaml:1: network: expected "none" or "egress", got "host"'),
      );
    });
    it('rejects unknown fields, suggesting the near one', () => {
      assert.throws(
        () => resolve(withYaml('memroy: 512\n')),
        manifestError(/memroy: unknown field \(did you mean "memory"\?\)/),
      );
      assert.throws(() => resolve(withYaml('scale: { maximum: 3 }\n')), manifestError(/scale\.maximum: unknown field/));
      assert.throws(
        () => resolve(src({ 'index.js': '' }), { colour: 'blue' }),
        manifestError(/^config overrides: colour: unknown field/),
      );
    });
    it('checks scale.min <= scale.max, after merging', () => {
      assert.throws(
        () => resolve(withYaml('scale: { min: 5 }\n'), { scale: { max: 2 } }),
        manifestError(/min \(5\) must not exceed max \(2\)/),
      );
    });
    it('checks the autoscaler fields and fills their defaults (docs/autoscaling.md)', () => {
      const scale = (v: Record<string, unknown>, top: Record<string, unknown> = {}) =>
        resolve(src({ 'index.js': '' }), { ...top, scale: v }).scale;
      assert.deepEqual(
        scale({ metric: 'rps', window: '2m', scaleDownDelay: '30s', targetUtilization: 0.5, maxQueue: 50, min: 1 }),
        {
          min: 1,
          max: 10,
          idleTimeout: 300,
          initial: 1,
          metric: 'rps',
          target: 200,
          targetUtilization: 0.5,
          window: 120,
          scaleDownDelay: 30,
          maxQueue: 50,
        },
      );
      assert.equal(scale({}, { concurrency: 4 }).target, 4, 'the concurrency target defaults to concurrency');
      assert.equal(scale({ target: 3 }, { concurrency: 4 }).target, 3);
      assert.throws(() => scale({ target: 20 }), manifestError(/target \(20\) must not exceed concurrency \(10\)/));
      assert.throws(
        () => scale({ initial: 11 }),
        manifestError(/initial \(11\) must be between min \(0\) and max \(10\)/),
      );
      assert.throws(() => scale({ metric: 'cpu' }), manifestError(/scale\.metric: expected "concurrency" or "rps"/));
      assert.throws(() => scale({ window: '2s' }), manifestError(/scale\.window: expected whole seconds from 6/));
      assert.throws(
        () => scale({ targetUtilization: 70 }),
        manifestError(/scale\.targetUtilization: expected a share/),
      );
      assert.throws(() => scale({ maxQueue: 1.5 }), manifestError(/scale\.maxQueue: expected an integer/));
    });
    it('reads scale.schedule (scheduled warming) and names a bad window with its line', () => {
      const yaml =
        'scale:\n  max: 4\n  schedule:\n    - { cron: "0 8 * * 1-5", timezone: Europe/Paris, duration: 10h, min: 3 }\n';
      assert.deepEqual(resolve(withYaml(yaml)).scale.schedule, [
        { cron: '0 8 * * 1-5', timezone: 'Europe/Paris', duration: 36000, min: 3 },
      ]);
      assert.throws(
        () => resolve(withYaml(yaml.replace('1-5', '1-9'))),
        manifestError(/nimbus\.yaml:\d+: scale\.schedule: \[0\]\.cron: invalid cron expression/),
      );
      assert.throws(
        () => resolve(withYaml(yaml.replace('max: 4', 'max: 2'))),
        manifestError(/scale: schedule\[0\]\.min \(3\) must not exceed max \(2\)/),
      );
    });
    it('accepts idleTimeout as seconds or a duration string', () => {
      const idle = (v: unknown) => resolve(src({ 'index.js': '' }), { scale: { idleTimeout: v } }).scale.idleTimeout;
      assert.equal(idle(45), 45);
      assert.equal(idle('30s'), 30);
      assert.equal(idle('5m'), 300);
      assert.equal(idle('1h30m'), 5400);
      assert.equal(idle('120'), 120);
      for (const bad of [0, '0s', '5 minutes', '1.5m', -1, 1.5, '8d', 10_000_000]) {
        assert.throws(() => idle(bad), manifestError(/scale\.idleTimeout: expected whole seconds/), String(bad));
      }
    });
  });

  describe('env', () => {
    it('converts numbers and booleans to strings and refuses other values', () => {
      assert.deepEqual(resolve(withYaml('env: { N: 1.5, B: true, S: "x" }\n')).env, { N: '1.5', B: 'true', S: 'x' });
      assert.throws(
        () => resolve(withYaml('env:\n  OBJ: { a: 1 }\n')),
        manifestError(/env\.OBJ: expected a string, got \{"a":1\}/),
      );
    });
    it('refuses invalid names and the reserved PORT and NIMBUS_*', () => {
      assert.throws(
        () => resolve(withYaml('env: { "A-B": x }\n')),
        manifestError(/env\.A-B: not a valid environment variable name/),
      );
      assert.throws(() => resolve(withYaml('env: { PORT: 80 }\n')), manifestError(/env\.PORT: reserved/));
      assert.throws(
        () => resolve(src({ 'index.js': '' }), { env: { NIMBUS_TOKEN: 'x' } }),
        manifestError(/env\.NIMBUS_TOKEN: reserved/),
      );
      assert.throws(() => resolve(withYaml('env: [A, B]\n')), manifestError(/env: expected a mapping/));
    });
  });

  describe('runtime, command and handler', () => {
    it('splits a command string like a shell, or takes an argv list', () => {
      const cmd = (command: unknown) => resolve(src({}), { runtime: 'app', command }).command;
      assert.deepEqual(cmd(`sh -c "echo 'hi there' \\"q\\""  x\\ y`), ['sh', '-c', `echo 'hi there' "q"`, 'x y']);
      assert.deepEqual(cmd(['./bin/server', '--port', '$PORT']), ['./bin/server', '--port', '$PORT']);
      assert.throws(() => cmd('python3 "unclosed'), manifestError(/command: unterminated " quote/));
      assert.throws(() => cmd('   '), manifestError(/command: must name a program/));
      assert.throws(() => cmd(['a', 1]), manifestError(/command: expected a list of strings/));
    });
    it('requires command with runtime app, and refuses it with runtime node', () => {
      assert.throws(() => resolve(withYaml('runtime: app\n')), manifestError(/command: required with runtime app/));
      assert.throws(
        () => resolve(withYaml('command: node x.js\n')),
        manifestError(/command: only used with runtime app/),
      );
      assert.throws(
        () => resolve(withYaml('runtime: app\ncommand: x\nhandler: index.ts\n')),
        manifestError(/handler: only used with runtime node/),
      );
    });
    it('finds the default handler in order, then package.json main', () => {
      assert.equal(resolve(src({ 'index.mjs': '', 'index.js': '', 'index.cjs': '' })).handler, 'index.js');
      assert.equal(resolve(src({ 'index.cjs': '', 'index.mts': '' })).handler, 'index.mts');
      assert.equal(
        resolve(src({ 'package.json': '{"main": "./dist/server.js"}', 'dist/server.js': '' })).handler,
        'dist/server.js',
      );
      assert.equal(resolve(src({ 'package.json': '{"main": "lib/app"}', 'lib/app.js': '' })).handler, 'lib/app.js');
    });
    it('normalises an explicit handler and requires the file to exist', () => {
      assert.equal(resolve(withYaml('handler: ./src/main.ts\n', { 'src/main.ts': '' })).handler, 'src/main.ts');
      assert.throws(
        () => resolve(withYaml('handler: src/nope.ts\n')),
        manifestError(/handler: file "src\/nope\.ts" not found in the source/),
      );
      assert.throws(() => resolve(withYaml('handler: ../outside.ts\n')), manifestError(/handler: must stay inside/));
    });
    it('says what to do when there is no handler at all', () => {
      assert.throws(
        () => resolve(src({ 'README.md': '' })),
        manifestError(/No handler: add one of index\.ts, index\.mts/),
      );
    });
  });
});
