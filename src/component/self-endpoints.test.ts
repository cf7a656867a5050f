import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SelfEndpoints } from './types.ts';

test('self endpoints: remembered answers follow a later bind and a change of interface addresses', () => {
  const self = new SelfEndpoints();
  const none = new Set<string>();
  const local = (): ReadonlySet<string> => none;
  assert.equal(self.isSelf('127.0.0.1', 9100, local), false, 'nothing bound yet');
  self.add('127.0.0.1', 9100);
  assert.equal(self.isSelf('127.0.0.1', 9100, local), true, 'the bind is seen after a remembered "no"');
  assert.equal(self.isSelf('::ffff:127.0.0.1', 9100, local), true, 'compared as addresses, not text');
  assert.equal(self.isSelf('127.0.0.1', 9101, local), false, 'another port');

  const wild = new SelfEndpoints();
  wild.add('0.0.0.0', 9100);
  let addrs: ReadonlySet<string> = new Set(['192.0.2.7']);
  const current = (): ReadonlySet<string> => addrs;
  assert.equal(wild.isSelf('198.51.100.9', 9100, current), false);
  assert.equal(wild.isSelf('127.0.0.5', 9100, current), true, 'a wildcard bind is reached through loopback');
  addrs = new Set(['192.0.2.7', '198.51.100.9']);
  assert.equal(wild.isSelf('198.51.100.9', 9100, current), true, 'a new interface address is not answered from memory');
});
