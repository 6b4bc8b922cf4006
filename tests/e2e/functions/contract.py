import time


def echo(event, context):
    return event['data']


def info(event, context):
    return {"event-id": event["event-id"], "event-namespace": event["event-namespace"],
            "function-name": context["function-name"], "runtime": context["runtime"],
            "timeout": str(context["timeout"])}


def fail(event, context):
    raise ValueError("contract failure")


def slow(event, context):
    time.sleep(float(event["data"] or 30))
    return "done"
