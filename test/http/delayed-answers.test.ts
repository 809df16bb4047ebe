import { EventEmitter } from 'node:events';
import { createDelayedAnswers } from '../../src/http/error-handler';

/**
 * The timer behind HASH_REFUSAL_DELAY_MS (ADR 0042), on its own: when an answer leaves, what a client
 * that went away costs, and the cap on answers held at once. A response stand-in with the four
 * members the timer uses; Node's own response is exercised by test/auth/hashing-capacity.test.ts.
 */
class FakeResponse extends EventEmitter {
  destroyed = false;
  headersSent = false;
  goAway(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('delayed answers (ADR 0042)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const noError = (error: unknown) => {
    throw new Error(`unexpected: ${String(error)}`);
  };

  test('when an answer is held, then it leaves after the delay and not a millisecond before, and nothing stays held', () => {
    const delayed = createDelayedAnswers({ delayMs: 250 });
    const answer = jest.fn();
    const res = new FakeResponse();

    delayed.answerLater(res, answer, noError);
    jest.advanceTimersByTime(249);
    expect(answer).not.toHaveBeenCalled();
    expect(delayed.held()).toBe(1);
    jest.advanceTimersByTime(1);

    expect(answer).toHaveBeenCalledTimes(1);
    expect(delayed.held()).toBe(0);
    expect(res.listenerCount('close')).toBe(0);
  });

  test('when the client goes away during the delay, then its timer is cleared, nothing is answered and its place is free', () => {
    const delayed = createDelayedAnswers({ delayMs: 250 });
    const answer = jest.fn();
    const res = new FakeResponse();

    delayed.answerLater(res, answer, noError);
    jest.advanceTimersByTime(100);
    res.goAway();

    expect(jest.getTimerCount()).toBe(0);
    expect(delayed.held()).toBe(0);
    jest.advanceTimersByTime(1000);
    expect(answer).not.toHaveBeenCalled();
  });

  test('when as many answers are held as the cap allows, then the next one leaves at once', () => {
    const delayed = createDelayedAnswers({ delayMs: 250, maxHeld: 2 });
    const answers = [jest.fn(), jest.fn(), jest.fn()];

    for (const answer of answers) delayed.answerLater(new FakeResponse(), answer, noError);

    expect(answers.map((a) => a.mock.calls.length)).toEqual([0, 0, 1]);
    expect(delayed.held()).toBe(2);
    jest.advanceTimersByTime(250);
    expect(answers.map((a) => a.mock.calls.length)).toEqual([1, 1, 1]);
    expect(delayed.held()).toBe(0);
  });

  test('when the delay is 0, then every answer leaves at once', () => {
    const delayed = createDelayedAnswers({ delayMs: 0 });
    const answer = jest.fn();

    delayed.answerLater(new FakeResponse(), answer, noError);

    expect(answer).toHaveBeenCalledTimes(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  test('when the held answer throws, then the error goes to the handler given, not out of the timer', () => {
    const delayed = createDelayedAnswers({ delayMs: 10 });
    const failure = new Error('render failed');
    const onError = jest.fn();

    delayed.answerLater(
      new FakeResponse(),
      () => {
        throw failure;
      },
      onError,
    );
    jest.advanceTimersByTime(10);

    expect(onError).toHaveBeenCalledWith(failure);
    expect(delayed.held()).toBe(0);
  });
});
