package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/Admiral-Piett/goaws/app"
)

// front serves SQS's AWS JSON 1.0 protocol (a POST with X-Amz-Target
// "AmazonSQS.<Action>" and a JSON body) by asking goaws the same in its
// query protocol; anything else (SNS, the query protocol) goes to goaws as
// it is.
type front struct{ goaws http.Handler }

// maxRequest bounds a JSON request: SQS's largest message and its attributes.
const maxRequest = 1 << 20

func (f front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action, isJSON := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if !isJSON {
		f.goaws.ServeHTTP(w, r)
		return
	}
	var input map[string]any
	decoder := json.NewDecoder(io.LimitReader(r.Body, maxRequest))
	decoder.UseNumber()
	if err := decoder.Decode(&input); err != nil {
		writeJSONError(w, http.StatusBadRequest, "InvalidParameterValue", "malformed JSON: "+err.Error())
		return
	}
	var wanted []any
	if action == "GetQueueAttributes" {
		wanted, _ = input["AttributeNames"].([]any)
		input["AttributeNames"] = []any{"All"} // for visibleCount
	}
	form, err := queryForm(action, input)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	query, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "/", strings.NewReader(form.Encode()))
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	query.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	answer := httptest.NewRecorder()
	f.goaws.ServeHTTP(answer, query)
	if r.Context().Err() != nil {
		return // the client gave up on a long poll
	}
	if answer.Code >= 300 {
		code, message := queryError(answer.Code, answer.Body.Bytes())
		writeJSONError(w, answer.Code, code, message)
		return
	}
	output, err := jsonAnswer(action, answer.Body.Bytes())
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	if attributes, ok := output["Attributes"].(map[string]string); ok && action == "GetQueueAttributes" {
		output["Attributes"] = visibleCount(attributes, wanted)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(output)
}

// queryForm is input in the query protocol's form: scalars by name, maps
// and lists numbered from 1 under their singular names.
func queryForm(action string, input map[string]any) (url.Values, error) {
	form := url.Values{"Action": {action}, "Version": {"2012-11-05"}}
	for _, name := range slices.Sorted(maps.Keys(input)) {
		var err error
		switch value := input[name]; name {
		case "Attributes":
			err = putNameValues(form, "Attribute", value)
		case "AttributeNames", "MessageSystemAttributeNames":
			err = putList(form, "AttributeName", value)
		case "MessageAttributeNames":
			err = putList(form, "MessageAttributeName", value)
		case "MessageAttributes":
			err = putMessageAttributes(form, "MessageAttribute", value)
		case "Entries":
			err = putEntries(form, action+"RequestEntry", value)
		case "tags":
			// goaws keeps no tags
		default:
			var text string
			text, err = scalar(value)
			form.Set(name, text)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return form, nil
}

func scalar(value any) (string, error) {
	switch v := value.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %T", value)
}

func putList(form url.Values, prefix string, value any) error {
	list, ok := value.([]any)
	if !ok {
		return errors.New("want a list")
	}
	for i, item := range list {
		text, err := scalar(item)
		if err != nil {
			return err
		}
		form.Set(fmt.Sprintf("%s.%d", prefix, i+1), text)
	}
	return nil
}

func putNameValues(form url.Values, prefix string, value any) error {
	m, ok := value.(map[string]any)
	if !ok {
		return errors.New("want an object")
	}
	for i, name := range slices.Sorted(maps.Keys(m)) {
		text, err := scalar(m[name])
		if err != nil {
			return err
		}
		form.Set(fmt.Sprintf("%s.%d.Name", prefix, i+1), name)
		form.Set(fmt.Sprintf("%s.%d.Value", prefix, i+1), text)
	}
	return nil
}

func putMessageAttributes(form url.Values, prefix string, value any) error {
	m, ok := value.(map[string]any)
	if !ok {
		return errors.New("want an object")
	}
	for i, name := range slices.Sorted(maps.Keys(m)) {
		fields, ok := m[name].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object", name)
		}
		key := fmt.Sprintf("%s.%d", prefix, i+1)
		form.Set(key+".Name", name)
		for _, field := range []string{"DataType", "StringValue", "BinaryValue"} {
			if fields[field] == nil {
				continue
			}
			text, err := scalar(fields[field])
			if err != nil {
				return fmt.Errorf("%s.%s: %w", name, field, err)
			}
			form.Set(key+".Value."+field, text)
		}
	}
	return nil
}

func putEntries(form url.Values, prefix string, value any) error {
	list, ok := value.([]any)
	if !ok {
		return errors.New("want a list")
	}
	for i, item := range list {
		entry, ok := item.(map[string]any)
		if !ok {
			return errors.New("want a list of objects")
		}
		key := fmt.Sprintf("%s.%d", prefix, i+1)
		for name, value := range entry {
			var err error
			if name == "MessageAttributes" {
				err = putMessageAttributes(form, key+".MessageAttribute", value)
			} else {
				var text string
				text, err = scalar(value)
				form.Set(key+"."+name, text)
			}
			if err != nil {
				return fmt.Errorf("%s.%s: %w", key, name, err)
			}
		}
	}
	return nil
}

// queryResult is every field of goaws's <Action>Result elements.
type queryResult struct {
	QueueURL               []string `xml:"QueueUrl"`
	MessageID              string   `xml:"MessageId"`
	MD5OfMessageBody       string   `xml:"MD5OfMessageBody"`
	MD5OfMessageAttributes string   `xml:"MD5OfMessageAttributes"`
	SequenceNumber         string   `xml:"SequenceNumber"`
	Attributes             []struct {
		Name  string `xml:"Name"`
		Value string `xml:"Value"`
	} `xml:"Attribute"`
	Messages []struct {
		MessageID              string `xml:"MessageId"`
		ReceiptHandle          string `xml:"ReceiptHandle"`
		MD5OfBody              string `xml:"MD5OfBody"`
		Body                   string `xml:"Body"`
		MD5OfMessageAttributes string `xml:"MD5OfMessageAttributes"`
		Attributes             []struct {
			Name  string `xml:"Name"`
			Value string `xml:"Value"`
		} `xml:"Attribute"`
		MessageAttributes []struct {
			Name  string         `xml:"Name"`
			Value messageAttrXML `xml:"Value"`
		} `xml:"MessageAttribute"`
	} `xml:"Message"`
	Entries []batchEntryXML `xml:"SendMessageBatchResultEntry"`
	Deleted []batchEntryXML `xml:"DeleteMessageBatchResultEntry"`
	Failed  []struct {
		ID          string `xml:"Id"`
		Code        string `xml:"Code"`
		Message     string `xml:"Message"`
		SenderFault bool   `xml:"SenderFault"`
	} `xml:"BatchResultErrorEntry"`
}

type messageAttrXML struct {
	DataType    string `xml:"DataType" json:"DataType"`
	StringValue string `xml:"StringValue" json:"StringValue,omitempty"`
	BinaryValue string `xml:"BinaryValue" json:"BinaryValue,omitempty"`
}

type batchEntryXML struct {
	ID                     string `xml:"Id" json:"Id"`
	MessageID              string `xml:"MessageId" json:"MessageId,omitempty"`
	MD5OfMessageBody       string `xml:"MD5OfMessageBody" json:"MD5OfMessageBody,omitempty"`
	MD5OfMessageAttributes string `xml:"MD5OfMessageAttributes" json:"MD5OfMessageAttributes,omitempty"`
	SequenceNumber         string `xml:"SequenceNumber" json:"SequenceNumber,omitempty"`
}

// jsonAnswer is goaws's XML answer to action as SQS's JSON answer.
func jsonAnswer(action string, body []byte) (map[string]any, error) {
	var result queryResult
	decoder := xml.NewDecoder(bytes.NewReader(body))
	for {
		token, err := decoder.Token()
		if errors.Is(err, io.EOF) {
			break // an answer without a result: nothing to say
		}
		if err != nil {
			return nil, fmt.Errorf("goaws answered %s with XML it cannot read: %w", action, err)
		}
		if start, ok := token.(xml.StartElement); ok && start.Name.Local == action+"Result" {
			if err := decoder.DecodeElement(&result, &start); err != nil {
				return nil, fmt.Errorf("goaws answered %s with XML it cannot read: %w", action, err)
			}
			break
		}
	}
	out := map[string]any{}
	switch action {
	case "CreateQueue", "GetQueueUrl":
		if len(result.QueueURL) == 1 {
			out["QueueUrl"] = queueURL(result.QueueURL[0])
		}
	case "ListQueues":
		urls := []string{}
		for _, u := range result.QueueURL {
			urls = append(urls, queueURL(u))
		}
		out["QueueUrls"] = urls
	case "GetQueueAttributes":
		attributes := map[string]string{}
		for _, a := range result.Attributes {
			attributes[a.Name] = a.Value
		}
		out["Attributes"] = attributes
	case "SendMessage":
		putNonEmpty(out, "MessageId", result.MessageID)
		putNonEmpty(out, "MD5OfMessageBody", result.MD5OfMessageBody)
		putNonEmpty(out, "MD5OfMessageAttributes", result.MD5OfMessageAttributes)
		putNonEmpty(out, "SequenceNumber", result.SequenceNumber)
	case "ReceiveMessage":
		messages := []map[string]any{}
		for _, m := range result.Messages {
			message := map[string]any{"MessageId": m.MessageID, "ReceiptHandle": m.ReceiptHandle, "MD5OfBody": m.MD5OfBody, "Body": m.Body}
			putNonEmpty(message, "MD5OfMessageAttributes", m.MD5OfMessageAttributes)
			attributes := map[string]string{}
			for _, a := range m.Attributes {
				attributes[a.Name] = a.Value
			}
			message["Attributes"] = attributes
			if len(m.MessageAttributes) > 0 {
				values := map[string]messageAttrXML{}
				for _, a := range m.MessageAttributes {
					values[a.Name] = a.Value
				}
				message["MessageAttributes"] = values
			}
			messages = append(messages, message)
		}
		out["Messages"] = messages
	case "SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch":
		out["Successful"] = append(result.Entries, result.Deleted...)
		failed := []map[string]any{}
		for _, f := range result.Failed {
			failed = append(failed, map[string]any{"Id": f.ID, "Code": f.Code, "Message": f.Message, "SenderFault": f.SenderFault})
		}
		out["Failed"] = failed
	}
	return out, nil
}

// visibleCount makes goaws's ApproximateNumberOfMessages SQS's: goaws
// counts the messages in flight in it too, where SQS counts them only in
// ApproximateNumberOfMessagesNotVisible. It keeps the attributes wanted
// (all when none or "All" is).
func visibleCount(attributes map[string]string, wanted []any) map[string]string {
	all, _ := strconv.Atoi(attributes["ApproximateNumberOfMessages"])
	hidden, _ := strconv.Atoi(attributes["ApproximateNumberOfMessagesNotVisible"])
	attributes["ApproximateNumberOfMessages"] = strconv.Itoa(max(0, all-hidden))
	if len(wanted) == 0 || slices.Contains(wanted, any("All")) {
		return attributes
	}
	kept := map[string]string{}
	for _, name := range wanted {
		if name, ok := name.(string); ok && attributes[name] != "" {
			kept[name] = attributes[name]
		}
	}
	return kept
}

func putNonEmpty(m map[string]any, name, value string) {
	if value != "" {
		m[name] = value
	}
}

// queueURL drops the region goaws puts before the host of its queue URLs
// ("http://us-east-1.127.0.0.1:4100/…"), which no resolver would find.
func queueURL(u string) string {
	env := app.CurrentEnvironment
	return strings.Replace(u, "://"+env.Region+"."+env.Host+":", "://"+env.Host+":", 1)
}

// queryErrorCodes are SQS's JSON error types for goaws's query error codes;
// any other code loses its "AWS.SimpleQueueService." prefix.
var queryErrorCodes = map[string]string{
	"AWS.SimpleQueueService.NonExistentQueue":   "QueueDoesNotExist",
	"AWS.SimpleQueueService.QueueExists":        "QueueNameExists",
	"AWS.SimpleQueueService.MessageNotInFlight": "MessageNotInflight",
	"AWS.SimpleQueueService.GeneralError":       "InternalError",
}

// queryError reads goaws's XML error: its JSON type and message.
func queryError(status int, body []byte) (code, message string) {
	var answer struct {
		Error struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
	}
	if err := xml.Unmarshal(body, &answer); err != nil || answer.Error.Code == "" {
		// goaws answers an unknown action with plain text
		return "InvalidAction", strings.TrimSpace(string(body))
	}
	if status == http.StatusNotFound {
		// goaws names a receipt handle it does not hold "QueueExists", with a 404
		return "ReceiptHandleIsInvalid", answer.Error.Message
	}
	if code, ok := queryErrorCodes[answer.Error.Code]; ok {
		return code, answer.Error.Message
	}
	return strings.TrimPrefix(answer.Error.Code, "AWS.SimpleQueueService."), answer.Error.Message
}

// writeJSONError answers as SQS does: the error's type in __type, and the
// query protocol's code in x-amzn-query-error for clients that read it.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Query-Error", code+";Sender")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": message})
}
