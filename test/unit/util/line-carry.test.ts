import { describe, expect, it } from 'vitest';
import { LineCarry } from '../../../src/util/line-carry.js';

describe('LineCarry', () => {
  it('gives back the carried chunks and the tail in order, then is empty', () => {
    const c = new LineCarry();
    expect(c.bytes).toBe(0);
    c.add(Buffer.from('ab'));
    c.add(Buffer.alloc(0));
    c.add(Buffer.from('cd'));
    expect(c.bytes).toBe(4);
    expect(c.take(Buffer.from('e\n')).toString()).toBe('abcde\n');
    expect(c.bytes).toBe(0);
    c.add(Buffer.from('x'));
    expect(c.take().toString()).toBe('x');
    expect(c.take().length).toBe(0);
  });

  it('joins a 4 MB line carried in 64 KiB chunks into the same bytes', () => {
    const line = Buffer.alloc(4 << 20, 'y');
    const c = new LineCarry();
    for (let i = 0; i < line.length; i += 65536) c.add(line.subarray(i, i + 65536));
    expect(c.take(Buffer.from('\n')).equals(Buffer.concat([line, Buffer.from('\n')]))).toBe(true);
  });
});
