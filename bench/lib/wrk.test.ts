import { describe, expect, it } from 'vitest';
import { parseWrk } from './wrk.js';

const OUT = `Running 8s test @ http://127.0.0.1:41221/page.html
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   420.11us  301.20us  12.01ms   95.12%
    Req/Sec    65.31k     4.12k   70.02k    80.00%
  Latency Distribution
     50%  380.00us
     75%  450.00us
     90%  600.00us
     99%    1.06ms
  520123 requests in 8.00s, 650.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  65015.38
Transfer/sec:     81.27MB
`;

describe('parseWrk', () => {
  it('reads counts, percentiles in any unit and errors', () => {
    const r = parseWrk(OUT);
    expect(r.requests).toBe(520123);
    expect(r.seconds).toBe(8);
    expect(r.rps).toBeCloseTo(65015.4, 1);
    expect(r.p50Ms).toBeCloseTo(0.38, 6);
    expect(r.p99Ms).toBeCloseTo(1.06, 6);
    expect(r.socketErrors).toBe(3);
    expect(r.non2xx).toBe(4);
  });

  it('reads seconds and minutes', () => {
    const r = parseWrk(OUT.replace('1.06ms', '1.50s').replace('in 8.00s', 'in 1.00m'));
    expect(r.p99Ms).toBe(1500);
    expect(r.seconds).toBe(60);
  });

  it('says what it could not read', () => {
    expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused')).toThrow(
      /unexpected output/,
    );
  });
});
