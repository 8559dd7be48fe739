"""Test and benchmark harness shared by tests/ and benchmarks/: a real control plane, project paths, helpers.

Not part of the shipped package: it starts real kube-apiserver/etcd processes for tests.
"""
