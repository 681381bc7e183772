"""A real local Kubernetes control plane as processes.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes).
"""
