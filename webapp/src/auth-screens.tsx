// Sign up, email verification (the mail's link opens /app/verify-email?token=...), log in, forgot and reset password.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiProblem, describe, publicCall, type Session, setSession } from './api.ts';
import { linkProps, navigate } from './router.ts';

function Card(props: { title: string; children: ComponentChildren }) {
  return (
    <section class="card narrow" aria-labelledby="screen-title">
      <h2 id="screen-title">{props.title}</h2>
      {props.children}
    </section>
  );
}

function useBusy() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const run = async (task: () => Promise<void>) => {
    setBusy(true);
    setError('');
    try {
      await task();
    } catch (problem) {
      setError(describe(problem));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

const value = (form: HTMLFormElement, name: string) => (form.elements.namedItem(name) as HTMLInputElement).value;

export function LoginScreen(props: { notice?: string }) {
  const { busy, error, run } = useBusy();
  const [unverified, setUnverified] = useState('');
  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const identity = value(form, 'identity').trim();
    const password = value(form, 'password');
    void run(async () => {
      setUnverified('');
      const body = identity.includes('@') ? { email: identity, password } : { username: identity, password };
      try {
        const answer = await publicCall<Session>('/api/auth/login', body);
        setSession({ accessToken: answer.accessToken, refreshToken: answer.refreshToken, user: answer.user });
        navigate('/', { replace: true });
      } catch (problem) {
        if (problem instanceof ApiProblem && problem.code === 'EMAIL_NOT_VERIFIED' && identity.includes('@')) setUnverified(identity);
        throw problem;
      }
    });
  };
  return (
    <Card title="Log in">
      {props.notice ? (
        <p class="notice" role="status">
          {props.notice}
        </p>
      ) : null}
      <form class="stack" onSubmit={onSubmit}>
        <label for="login-identity">Email or username</label>
        <input id="login-identity" name="identity" autocomplete="username" required />
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required />
        <button type="submit" disabled={busy}>
          Log in
        </button>
        <p class="error" role="alert">
          {error}
        </p>
      </form>
      {unverified ? <ResendVerification email={unverified} /> : null}
      <p class="links">
        <a {...linkProps('/signup')}>Create an account</a> · <a {...linkProps('/forgot-password')}>Forgot your password?</a>
      </p>
    </Card>
  );
}

function ResendVerification(props: { email: string }) {
  const { busy, error, run } = useBusy();
  const [sent, setSent] = useState(false);
  return (
    <div class="stack">
      <button
        type="button"
        class="secondary"
        disabled={busy || sent}
        onClick={() =>
          void run(async () => {
            await publicCall('/api/auth/resend-verification', { email: props.email });
            setSent(true);
          })
        }
      >
        Send the confirmation mail again
      </button>
      <p role="status">{sent ? `If ${props.email} has an account waiting for confirmation, a new mail is on its way.` : ''}</p>
      <p class="error">{error}</p>
    </div>
  );
}

export function SignupScreen() {
  const { busy, error, run } = useBusy();
  const [done, setDone] = useState('');
  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const body = { username: value(form, 'username').trim(), email: value(form, 'email').trim(), password: value(form, 'password') };
    void run(async () => {
      await publicCall('/api/auth/signup', body);
      setDone(body.email);
    });
  };
  if (done)
    return (
      <Card title="Check your mail">
        <p role="status">
          We sent a confirmation link to <strong>{done}</strong>. Open it to activate your account, then log in.
        </p>
        <p class="links">
          <a {...linkProps('/login')}>Go to log in</a>
        </p>
      </Card>
    );
  return (
    <Card title="Create an account">
      <form class="stack" onSubmit={onSubmit}>
        <label for="signup-username">Username</label>
        <input id="signup-username" name="username" autocomplete="username" required minLength={3} maxLength={32} />
        <label for="signup-email">Email</label>
        <input id="signup-email" name="email" type="email" autocomplete="email" required />
        <label for="signup-password">Password</label>
        <input
          id="signup-password"
          name="password"
          type="password"
          autocomplete="new-password"
          required
          minLength={8}
          aria-describedby="signup-password-hint"
        />
        <p id="signup-password-hint" class="hint">
          At least 8 characters; not your username or email.
        </p>
        <button type="submit" disabled={busy}>
          Sign up
        </button>
        <p class="error" role="alert">
          {error}
        </p>
      </form>
      <p class="links">
        Already registered? <a {...linkProps('/login')}>Log in</a>
      </p>
    </Card>
  );
}

export function VerifyEmailScreen(props: { token: string }) {
  const [state, setState] = useState<'working' | 'ok' | 'failed'>('working');
  const [error, setError] = useState('');
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return; // a token is single-use: never post it twice
    started.current = true;
    if (!props.token) {
      setState('failed');
      setError('This link has no token.');
      return;
    }
    publicCall('/api/auth/verify-email', { token: props.token })
      .then(() => setState('ok'))
      .catch((problem: unknown) => {
        setState('failed');
        setError(describe(problem));
      });
  }, [props.token]);
  return (
    <Card title="Confirm your email">
      {state === 'working' ? <p role="status">Confirming…</p> : null}
      {state === 'ok' ? (
        <p role="status" class="ok">
          Your email address is confirmed. You can log in now.
        </p>
      ) : null}
      {state === 'failed' ? (
        <p role="alert" class="error">
          Could not confirm: {error}
        </p>
      ) : null}
      <p class="links">
        <a {...linkProps('/login')}>Go to log in</a>
      </p>
    </Card>
  );
}

export function ForgotPasswordScreen() {
  const { busy, error, run } = useBusy();
  const [sent, setSent] = useState('');
  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const email = value(event.currentTarget as HTMLFormElement, 'email').trim();
    void run(async () => {
      await publicCall('/api/auth/forgot-password', { email });
      setSent(email);
    });
  };
  return (
    <Card title="Forgot your password?">
      {sent ? (
        <p role="status">If {sent} has an account, a mail with a reset link is on its way. The link works for one hour.</p>
      ) : (
        <form class="stack" onSubmit={onSubmit}>
          <label for="forgot-email">Email</label>
          <input id="forgot-email" name="email" type="email" autocomplete="email" required />
          <button type="submit" disabled={busy}>
            Send a reset link
          </button>
          <p class="error" role="alert">
            {error}
          </p>
        </form>
      )}
      <p class="links">
        <a {...linkProps('/login')}>Back to log in</a>
      </p>
    </Card>
  );
}

export function ResetPasswordScreen(props: { token: string }) {
  const { busy, error, setError, run } = useBusy();
  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const password = value(form, 'password');
    if (password !== value(form, 'confirm')) {
      setError('The two passwords differ.');
      return;
    }
    void run(async () => {
      await publicCall('/api/auth/reset-password', { token: props.token, password });
      navigate('/login?reset=1', { replace: true });
    });
  };
  return (
    <Card title="Choose a new password">
      <form class="stack" onSubmit={onSubmit}>
        <label for="reset-password">New password</label>
        <input id="reset-password" name="password" type="password" autocomplete="new-password" required minLength={8} />
        <label for="reset-confirm">New password again</label>
        <input id="reset-confirm" name="confirm" type="password" autocomplete="new-password" required minLength={8} />
        <button type="submit" disabled={busy || !props.token}>
          Set the new password
        </button>
        <p class="error" role="alert">
          {props.token ? error : 'This link has no token.'}
        </p>
      </form>
    </Card>
  );
}
