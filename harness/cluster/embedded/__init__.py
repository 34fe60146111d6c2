"""The embedded cluster: the real Kubernetes control plane on loopback ports, with process nodes.

``binaries`` finds the cached control-plane build, ``pki`` makes the keys and
certificates, ``control_plane`` runs etcd, kube-apiserver, kube-controller-manager
and kube-scheduler, ``node_agent`` serves process nodes (the virtual-kubelet
pattern), and ``cluster`` puts them together.
"""
