"""Pizza operator: reconciles PizzaModelDeployments into a GPU primary, a CPU fallback, a router."""
