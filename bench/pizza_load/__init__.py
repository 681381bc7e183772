"""The load generator (`loadgen`), its timeline drawing (`timeline`), and the fault injector
(`freeze`: SIGSTOP/SIGCONT on a pod's container by cgroup) used by the benchmarks, the demo and
the e2e tests. Not part of the product and not in its images; installed with the project
(pyproject.toml: packages found under bench/)."""
