module pizza.ai/e2e/incluster

go 1.24
