import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitFunctionUrl } from './function-url.js';

describe('splitFunctionUrl', () => {
  it('parses NAME, NAME@TAG and the path the function sees', () => {
    assert.deepEqual(splitFunctionUrl('/fn/shop/a/b?x=1'), { name: 'shop', path: '/a/b?x=1' });
    assert.deepEqual(splitFunctionUrl('/fn/shop?x'), { name: 'shop', path: '/?x' });
    assert.deepEqual(splitFunctionUrl('/fn/shop@canary/a'), { name: 'shop', tag: 'canary', path: '/a' });
    assert.deepEqual(splitFunctionUrl('/fn/shop@r3'), { name: 'shop', tag: 'r3', path: '/' });
    assert.deepEqual(splitFunctionUrl('/fn/shop%40blue/'), { name: 'shop', tag: 'blue', path: '/' });
    assert.deepEqual(splitFunctionUrl('/fn/shop'), { name: 'shop', path: '/' });
    assert.deepEqual(splitFunctionUrl('/fn/'), { name: '', path: '/' });
  });

  it('keeps a malformed escape as it is instead of throwing', () => {
    assert.deepEqual(splitFunctionUrl('/fn/sh%E0%A4%A/x'), { name: 'sh%E0%A4%A', path: '/x' });
  });
});
