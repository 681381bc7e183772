"""Pizza operator: reconciles PizzaModelDeployment resources into GPU primary and CPU fallback serving."""
