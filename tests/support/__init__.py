"""Helpers shared by every test suite and the benchmarks: free ports and plain HTTP (net),
polling (waiting), status conditions (conditions), servers in threads or processes (servers),
test images (images), a real Prometheus and its query API (prometheus), the Grafana dashboard
checker (dashboard), and the test tiers' check (tiers)."""
