// Package awsdest holds what the SQS and SNS destinations share: their
// credentials, API clients whose connections go through the destination
// policy, and the classification of AWS API errors.
package awsdest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/webhook"
)

// Credentials are an AWS endpoint's: static keys, and optionally a role
// assumed with them. Herald never uses its own environment's AWS
// identity for a customer's endpoint, which would let the customer act as
// the platform.
type Credentials struct {
	Region          string `json:"region"`
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	RoleARN         string `json:"roleArn,omitempty"`
	ExternalID      string `json:"externalId,omitempty"`
	// EndpointURL replaces the service's endpoint (a VPC endpoint, or an
	// emulator in development).
	EndpointURL string `json:"endpointUrl,omitempty"`
}

// Fields declares the credential fields, for specs.
func Fields() []destination.Field {
	return []destination.Field{
		{Name: "region", Label: "Region", Kind: destination.String, Required: true, Placeholder: "eu-west-1"},
		{Name: "accessKeyId", Label: "Access key ID", Kind: destination.String, Required: true, Placeholder: "AKIA..."},
		{Name: "secretAccessKey", Label: "Secret access key", Kind: destination.String, Required: true, Secret: true},
		{Name: "roleArn", Label: "Role to assume", Kind: destination.String, Placeholder: "arn:aws:iam::123456789012:role/herald-publisher",
			Help: "Optional: Herald assumes this role with the keys above and publishes as the role."},
		{Name: "externalId", Label: "External ID", Kind: destination.String, Help: "The external ID the role's trust policy requires, if any."},
		{Name: "endpointUrl", Label: "Endpoint URL", Kind: destination.String, Placeholder: "https://sqs.eu-west-1.amazonaws.com",
			Help: "Optional: a VPC endpoint (or an emulator in development) instead of the region's public endpoint."},
	}
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// Check validates credentials; field errors name the fields.
func (c *Credentials) Check(p destination.Policy) error {
	if !regionRE.MatchString(c.Region) {
		return destination.Invalid("region", "must be an AWS region such as eu-west-1, got %q", c.Region)
	}
	if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "arn:aws") {
		return destination.Invalid("roleArn", "must be a role ARN such as arn:aws:iam::123456789012:role/herald")
	}
	if c.ExternalID != "" && c.RoleARN == "" {
		return destination.Invalid("externalId", "is used only with roleArn")
	}
	if c.EndpointURL != "" {
		if _, err := checkURL(p, "endpointUrl", c.EndpointURL); err != nil {
			return err
		}
	}
	return nil
}

// CheckURL checks a URL an AWS destination sends to (a queue's, or an
// endpoint's) against the policy, naming field in errors.
func checkURL(p destination.Policy, field, raw string) (*url.URL, error) {
	u, err := p.CheckURL(raw)
	if err != nil {
		var ue *destination.URLError
		if errors.As(err, &ue) {
			return nil, destination.Invalid(field, "%s", ue.Reason)
		}
		return nil, destination.Invalid(field, "%v", err)
	}
	return u, nil
}

// CheckURL checks a URL an AWS destination sends to against the policy,
// naming field in errors.
func CheckURL(p destination.Policy, field, raw string) (*url.URL, error) {
	return checkURL(p, field, raw)
}

// Key is the pool key of clients made with these credentials.
func (c *Credentials) Key() string {
	return strings.Join([]string{c.Region, c.AccessKeyID, c.SecretAccessKey, c.RoleARN, c.ExternalID, c.EndpointURL}, "\x00")
}

// HTTPClient returns the HTTP client of a driver's API clients: its
// connections go through the policy and close when idle; it follows no
// redirect.
func HTTPClient(env destination.Env) *http.Client {
	dialer := env.Dialer(10 * time.Second)
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
			Proxy:                 nil,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			IdleConnTimeout:       env.IdleTimeout,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   env.Concurrency,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Config returns the AWS configuration of API clients with these
// credentials: no retries (Herald retries with the endpoint's policy, and
// sees throttling), static keys, and the assumed role if any.
func (c *Credentials) Config(client aws.HTTPClient, userAgent string) aws.Config {
	cfg := aws.Config{
		Region:      c.Region,
		HTTPClient:  client,
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
		AppID:       strings.ReplaceAll(userAgent, "/", "-"),
	}
	if c.RoleARN != "" {
		stsClient := sts.NewFromConfig(cfg)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "herald"
			if c.ExternalID != "" {
				o.ExternalID = aws.String(c.ExternalID)
			}
		}))
	}
	return cfg
}

// Classify returns the outcome of a failed API call and a message for the
// attempt's log.
func Classify(err error, timeout time.Duration, what string) (destination.Outcome, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		msg := fmt.Sprintf("%s: %s", code, ae.ErrorMessage())
		switch {
		case strings.Contains(code, "NonExistent"), strings.Contains(code, "NotFound"), code == "QueueDoesNotExist":
			return destination.Permanent, what + " does not exist: " + msg
		case code == "InvalidClientTokenId", code == "SignatureDoesNotMatch", code == "UnrecognizedClientException",
			code == "AccessDenied", code == "AccessDeniedException", code == "AuthorizationError", code == "InvalidAccessKeyId",
			code == "ExpiredToken", code == "IncompleteSignature", code == "MissingAuthenticationToken":
			return destination.Permanent, "access denied: " + msg
		case strings.Contains(code, "Throttl"), code == "RequestThrottled", code == "TooManyRequestsException", code == "KMSThrottlingException":
			return destination.Throttled, "throttled: " + msg
		case code == "InvalidParameterValue", code == "InvalidParameter", code == "InvalidMessageContents", code == "InvalidAttributeName",
			code == "ValidationError", code == "MissingParameter":
			return destination.Permanent, "refused: " + msg
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 && re.HTTPStatusCode() != http.StatusRequestTimeout &&
			re.HTTPStatusCode() != http.StatusTooManyRequests {
			return destination.Permanent, msg
		}
		return destination.Retryable, msg
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return destination.Retryable, fmt.Sprintf("timeout: no answer within %s", timeout)
	}
	return destination.ClassifyNetError(err, timeout)
}

// Attributes maps a message's headers to message attributes (at most 10
// per message, names of letters, digits, hyphens, underscores and dots).
func Attributes(hs []webhook.Header, each func(name, value string)) {
	for _, h := range hs {
		each(h.Name, h.Value)
	}
}
