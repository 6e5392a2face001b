/** Where a dependency's mock listens inside the namespace. */

/** `localhost` keeps 127.0.0.1 (the hosts file maps it there for everyone); other names get their own address. */
export function bindAddrFor(ep: { host: string; addr: string }): string {
  return ep.host === 'localhost' || ep.host === 'ip6-localhost' ? '127.0.0.1' : ep.addr;
}
