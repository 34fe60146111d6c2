"""A process node: registers a Node, keeps it Ready, and runs the pods bound to it as local process groups.

This is the virtual-kubelet pattern (as KWOK and Virtual Kubelet use it): to
Kubernetes it is a kubelet; a pod's container runs its command and env on this
machine in this Python environment; the image is not run.
"""
