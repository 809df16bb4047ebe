import { withDeadline } from '../../src/lib/deadline';

describe('withDeadline', () => {
  const late = (ms: number, value: string) =>
    new Promise<string>((resolve) => setTimeout(() => resolve(value), ms));

  test('when the work settles in time, then its value or error is what the race gives', async () => {
    await expect(withDeadline(late(5, 'done'), 1000, () => new Error('late'))).resolves.toBe('done');
    await expect(
      withDeadline(Promise.reject(new Error('broken')), 1000, () => new Error('late')),
    ).rejects.toThrow('broken');
  });

  test('when the work is too slow, then the race rejects with the timeout error at the deadline', async () => {
    const started = Date.now();
    await expect(withDeadline(late(2000, 'too late'), 50, () => new Error('late'))).rejects.toThrow('late');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  test('when the work fails after the deadline, then that failure is ignored: no unhandled rejection', async () => {
    // Jest fails a test in which a promise rejects unhandled; nothing else is needed to see one.
    let fail!: (error: Error) => void;
    const work = new Promise<string>((_resolve, reject) => (fail = reject));
    await expect(withDeadline(work, 10, () => new Error('late'))).rejects.toThrow('late');
    fail(new Error('failed after the deadline'));
    await new Promise((resolve) => setTimeout(resolve, 20));
  });

  describe('its timer', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    test('when the work resolves or rejects in time, then no timer is left behind', async () => {
      const resolved = withDeadline(Promise.resolve('done'), 60_000, () => new Error('late'));
      expect(jest.getTimerCount()).toBe(1);
      await expect(resolved).resolves.toBe('done');
      expect(jest.getTimerCount()).toBe(0);

      const rejected = withDeadline(Promise.reject(new Error('broken')), 60_000, () => new Error('late'));
      await expect(rejected).rejects.toThrow('broken');
      expect(jest.getTimerCount()).toBe(0);
    });
  });
});
