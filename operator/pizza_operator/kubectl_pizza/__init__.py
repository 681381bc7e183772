"""`kubectl pizza`: a kubectl plugin to look at and steer PizzaModelDeployments.

`cli` parses the command line, `api` reads and patches through the API server, `view` turns
what was read into plain data (what `-o json` prints), `render` turns that data into text
screens and `actions` says what each changing command patches (and its kubectl equivalent).
"""
