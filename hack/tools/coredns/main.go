// A minimal CoreDNS for the local cluster: it answers cluster.local (and the reverse zones) from
// the Kubernetes API and nothing else. Only the plugins below are compiled in. There is no
// forward, grpc, etcd or cloud plugin, so this server cannot send a query off the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order in which the plugins run, as in CoreDNS's plugin.cfg.
var directives = []string{"bind", "health", "ready", "errors", "log", "cache", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
