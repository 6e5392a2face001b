import { describe, expect, it } from 'vitest';
import { createRouteTable, routeMatches, routeTemplate } from './routes.js';
import { parseTime, shiftTimeText } from './transforms/timefmt.js';

describe('route templates', () => {
  it('templates ids by their look and by known token values', () => {
    expect(routeTemplate('/orders/123?full=1')).toBe('/orders/{id}');
    expect(routeTemplate('/orders/6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b/items')).toBe('/orders/{id}/items');
    expect(routeTemplate('/users/ada-1', new Set(['ada-1']))).toBe('/users/{id}');
    expect(routeTemplate('/users/ada-1')).toBe('/users/ada-1');
  });
  it('learns parameter positions from many distinct values', () => {
    const t = createRouteTable();
    for (let i = 0; i < 10; i++) t.add('GET', `/users/name-${i}/profile`);
    t.add('GET', '/users/me/profile');
    expect(t.template('/users/name-3/profile', 'GET')).toBe('/users/{id}/profile');
    expect(t.template('/health', 'GET')).toBe('/health');
  });
  it('matches templates and globs', () => {
    expect(routeMatches('/orders/{id}', '/orders/abc?x=1')).toBe(true);
    expect(routeMatches('/orders/{id}', '/orders/abc/items')).toBe(false);
    expect(routeMatches('/orders/**', '/orders/abc/items')).toBe(true);
    expect(routeMatches('/orders/**', '/orders')).toBe(true);
    expect(routeMatches('/api/*', '/api/v1')).toBe(true);
  });
});

describe('time formats', () => {
  it('shifts keeping the format', () => {
    const h = 3_600_000;
    expect(shiftTimeText('2024-05-01T12:00:00Z', h)).toBe('2024-05-01T13:00:00Z');
    expect(shiftTimeText('2024-05-01T12:00:00.123456+02:00', h)).toBe('2024-05-01T13:00:00.123456+02:00');
    expect(shiftTimeText('2024-05-01 12:00', h)).toBe('2024-05-01 13:00');
    expect(shiftTimeText('2024-05-01', 24 * h)).toBe('2024-05-02');
    expect(shiftTimeText('Wed, 01 May 2024 12:00:00 GMT', h)).toBe('Wed, 01 May 2024 13:00:00 GMT');
    expect(shiftTimeText('1714564800', h)).toBe('1714568400');
    expect(shiftTimeText('1714564800000', h)).toBe('1714568400000');
    expect(shiftTimeText('1714564800000123', h)).toBe('1714568400000123');
  });
  it('does not take ordinary numbers or words for times', () => {
    expect(parseTime('12345')).toBeUndefined();
    expect(parseTime('9999999999')).toBeUndefined();
    expect(parseTime('2024-13-01')).toBeUndefined();
    expect(parseTime('hello world')).toBeUndefined();
  });
});
