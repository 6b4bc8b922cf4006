package kubeless

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/kubeless/kubeless/pkg/functions"
)

func Echo(event functions.Event, context functions.Context) (string, error) {
	return event.Data, nil
}

func Info(event functions.Event, context functions.Context) (string, error) {
	out, err := json.Marshal(map[string]string{
		"event-id": event.EventID, "event-namespace": event.EventNamespace,
		"function-name": context.FunctionName, "runtime": context.Runtime, "timeout": context.Timeout,
	})
	return string(out), err
}

func Fail(event functions.Event, context functions.Context) (string, error) {
	return "", errors.New("contract failure")
}

func Slow(event functions.Event, context functions.Context) (string, error) {
	seconds, err := strconv.ParseFloat(event.Data, 64)
	if err != nil {
		seconds = 30
	}
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	return "done", nil
}
