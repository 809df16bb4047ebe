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
});
