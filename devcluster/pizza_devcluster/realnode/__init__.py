"""Real nodes beside the kwok ones: containerd + runc + bridge CNI + kubelet on this machine,
with one host kube-proxy, one host CoreDNS and a forwarder to the apiserver."""
