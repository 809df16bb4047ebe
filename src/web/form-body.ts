import express, { type RequestHandler } from 'express';
import { UnsupportedMediaTypeError } from '../errors';

/**
 * Our forms are a few short fields and two hidden ones (the longest, the reset form, holds two
 * passwords, a token and the CSRF token): anything much bigger is not one of our forms.
 */
const FORM_BODY_LIMIT = '4kb';
const FORM_PARAMETER_LIMIT = 8;

const parseForm = express.urlencoded({
  // Node's querystring: flat string values (a repeated key gives an array), no nested objects.
  extended: false,
  limit: FORM_BODY_LIMIT,
  parameterLimit: FORM_PARAMETER_LIMIT,
});

/**
 * Forms post urlencoded and nothing else; other types get 415 instead of being silently ignored (OWASP
 * REST Security Cheat Sheet, "Validate content types"), and a JSON body never reaches these routes.
 */
export const formBody: RequestHandler = (req, res, next) => {
  if (!req.is('application/x-www-form-urlencoded')) {
    return next(new UnsupportedMediaTypeError('This form accepts only a form submission.'));
  }
  parseForm(req, res, next);
};
