"""`python -m pizza_operator` is `pizza-operator`."""

from pizza_operator.cli import main

main()
