import express from 'express';

/** The baseline every row is compared with: Express 5 and one JSON route, nothing else. */
const app = express();
app.get('/', (_req, res) => {
  res.json({ status: 'ok' });
});
app.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
