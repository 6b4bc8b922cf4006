module.exports = {
  echo: (event) => event.data,
  info: (event, context) => ({
    'event-id': event['event-id'], 'event-namespace': event['event-namespace'],
    'function-name': context['function-name'], runtime: context.runtime, timeout: String(context.timeout),
  }),
  fail: () => { throw new Error('contract failure'); },
  slow: (event) => new Promise((resolve) => setTimeout(() => resolve('done'), 1000 * Number(event.data || 30))),
};
