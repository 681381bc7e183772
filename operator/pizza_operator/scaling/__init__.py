"""Autoscaling: `decide` (pure) turns the routers' load into a replica count per component;
`replicas` (pure) says what a Deployment is given in each mode."""
