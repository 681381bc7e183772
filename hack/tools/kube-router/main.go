// kube-router's network policy controller (its firewall: iptables and ipset, nothing else) for
// the local cluster's real nodes, which are two kubelets on one host sharing one netfilter.
//
// The stock kube-router runs one controller per node, and each one rewrites the host's whole
// KUBE-ROUTER-* chains for the pods of its own node (pods whose status.hostIP is its node's
// InternalIP). Two of them on one host would delete each other's pod chains on every sync. So
// this process runs the one controller, unchanged, for --hostname-override, and sees the pods
// of the other real nodes on this host (--local-node-ips) as its own: their status.hostIP is
// rewritten to its node's IP in its informer cache. Nothing else differs from kube-router
// --run-firewall --run-router=false --run-service-proxy=false; no BGP, no proxy, no routes.
//
// /healthz on --health-addr (loopback) answers 200 once the controller has started a sync and
// its top-level chains exist.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"github.com/spf13/pflag"
	v1core "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kube-router-netpol: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	klog.InitFlags(nil)
	config := options.NewKubeRouterConfig()
	config.AddFlags(pflag.CommandLine)
	localIPs := pflag.StringSlice("local-node-ips", nil,
		"InternalIPs of the other nodes whose pods run on this host (their pods are enforced too)")
	healthAddr := pflag.String("health-addr", "127.0.0.1:20244", "address of /healthz")
	pflag.Parse()
	if err := flag.Set("v", config.VLevel); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (iptables and ipset)")
	}
	if config.Kubeconfig == "" || config.HostnameOverride == "" {
		return fmt.Errorf("--kubeconfig and --hostname-override are required")
	}
	config.RunFirewall, config.RunRouter, config.RunServiceProxy = true, false, false
	config.MetricsEnabled = false

	restConfig, err := clientcmd.BuildConfigFromFlags("", config.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	node, err := client.CoreV1().Nodes().Get(ctx, config.HostnameOverride, metav1.GetOptions{})
	cancel()
	if err != nil {
		return fmt.Errorf("node %s: %w", config.HostnameOverride, err)
	}
	ownIP := internalIP(node)
	if ownIP == "" {
		return fmt.Errorf("node %s has no InternalIP", node.Name)
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	if err := podInformer.SetTransform(hostIPAs(ownIP, *localIPs)); err != nil {
		return err
	}
	nsInformer := factory.Core().V1().Namespaces().Informer()
	npInformer := factory.Networking().V1().NetworkPolicies().Informer()
	stop := make(chan struct{})
	factory.Start(stop)
	synced := factory.WaitForCacheSync(stop)
	for informer, ok := range synced {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", informer)
		}
	}

	iptables, ipsets, err := netpol.NewIPTablesHandlers(config)
	if err != nil {
		return err
	}
	var ipsetMutex sync.Mutex
	npc, err := netpol.NewNetworkPolicyController(client, config, podInformer, npInformer,
		nsInformer, &ipsetMutex, iptables, ipsets)
	if err != nil {
		return err
	}
	for informer, handler := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		podInformer: npc.PodEventHandler,
		nsInformer:  npc.NamespaceEventHandler,
		npInformer:  npc.NetworkPolicyEventHandler,
	} {
		if _, err := informer.AddEventHandler(handler); err != nil {
			return err
		}
	}

	var started atomic.Bool
	heartbeats := make(chan *healthcheck.ControllerHeartbeat, 10)
	go func() {
		for range heartbeats { // the controller sends one at the start of every sync
			started.Store(true)
		}
	}()
	go serveHealth(*healthAddr, &started)

	var wg sync.WaitGroup
	wg.Add(1)
	go npc.Run(heartbeats, stop, &wg)
	klog.Infof("enforcing NetworkPolicy for pods of node %s (%s) and of %v", node.Name, ownIP,
		*localIPs)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	close(stop)
	wg.Wait()
	return nil
}

// hostIPAs rewrites status.hostIP of the pods on the other local nodes to ownIP, so that the
// controller, which enforces for "its" node's pods, enforces for theirs as well.
func hostIPAs(ownIP string, others []string) cache.TransformFunc {
	local := map[string]bool{}
	for _, ip := range others {
		local[strings.TrimSpace(ip)] = true
	}
	return func(obj interface{}) (interface{}, error) {
		pod, ok := obj.(*v1core.Pod)
		if !ok || !local[pod.Status.HostIP] {
			return obj, nil
		}
		pod = pod.DeepCopy()
		pod.Status.HostIP = ownIP
		return pod, nil
	}
}

func internalIP(node *v1core.Node) string {
	for _, address := range node.Status.Addresses {
		if address.Type == v1core.NodeInternalIP && net.ParseIP(address.Address).To4() != nil {
			return address.Address
		}
	}
	return ""
}

func serveHealth(addr string, started *atomic.Bool) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !started.Load() {
			http.Error(w, "no sync started yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	klog.Fatal(server.ListenAndServe())
}
