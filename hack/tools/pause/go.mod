module github.com/pizza-operator/hack/tools/pause

go 1.26
