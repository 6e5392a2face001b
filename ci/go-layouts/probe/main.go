// A program whose DWARF describes every struct the Go TLS probes read (crypto/tls.Conn, net.TCPConn,
// net.netFD, internal/poll.FD, runtime.g): ci/go-layouts/generate.mjs builds it with each Go release
// and reads the offsets. It is never run.
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
)

func main() {
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		return
	}
	t := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	fmt.Fprintln(t, "probe")
	buf := make([]byte, 1)
	t.Read(buf)
}
