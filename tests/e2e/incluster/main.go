// incluster: calls the Kubernetes API the way in-cluster clients do (KUBERNETES_SERVICE_HOST,
// the service-account token and CA) and prints who the apiserver says it is, via a
// SelfSubjectReview. Used by the platform e2e tests from inside a pod.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	host := "https://" + os.Getenv("KUBERNETES_SERVICE_HOST") + ":" + os.Getenv("KUBERNETES_SERVICE_PORT")
	if len(os.Args) > 1 {
		host = os.Args[1]
	}
	ca, err := os.ReadFile(sa + "/ca.crt")
	check(err)
	token, err := os.ReadFile(sa + "/token")
	check(err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	req, err := http.NewRequest("POST", host+"/apis/authentication.k8s.io/v1/selfsubjectreviews", bytes.NewReader(body))
	check(err)
	req.Header.Set("Authorization", "Bearer "+string(token))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	check(err)
	defer resp.Body.Close()
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	check(json.NewDecoder(resp.Body).Decode(&review))
	fmt.Printf("%s %d %s\n", host, resp.StatusCode, review.Status.UserInfo.Username)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
