// The end-user web app: the shell (header with the credits balance, navigation, log out) and the screens by route.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentSession, logout, onSessionChange, type Session } from './api.ts';
import { ApiKeysScreen } from './api-keys.tsx';
import { ForgotPasswordScreen, LoginScreen, ResetPasswordScreen, SignupScreen, VerifyEmailScreen } from './auth-screens.tsx';
import { clearBalance, refreshBalance, useBalance } from './balance.ts';
import { ChatScreen } from './chat.tsx';
import { type Connection, onConnection, startEvents, stopEvents } from './events.ts';
import { linkProps, navigate, useLocation } from './router.ts';
import { UsageScreen } from './usage.tsx';

const BALANCE_EVERY_MS = 30_000;

function useSession(): Session | null {
  const [session, setSession] = useState(currentSession);
  useEffect(() => onSessionChange(setSession), []);
  return session;
}

function BalanceBadge() {
  const balance = useBalance();
  return (
    <p class="balance" aria-live="polite">
      <span class="balance-label">Credits</span>{' '}
      <strong id="balance-available" data-available={balance ? String(balance.available) : ''}>
        {balance ? balance.available.toLocaleString('en') : '…'}
      </strong>
      {balance?.reserved ? <span class="muted"> ({balance.reserved.toLocaleString('en')} reserved)</span> : null}
    </p>
  );
}

function LiveIndicator() {
  const [state, setState] = useState<Connection>('offline');
  useEffect(() => onConnection(setState), []);
  const label = state === 'live' ? 'Live updates on' : state === 'connecting' ? 'Connecting…' : 'Live updates off';
  return (
    <span class={`live-state ${state}`} id="live-state" data-state={state}>
      <span class="live-dot" aria-hidden="true" />
      {label}
    </span>
  );
}

function Header(props: { session: Session | null; path: string }) {
  const { session, path } = props;
  return (
    <header class="topbar">
      <h1>
        <a class="brand" {...linkProps('/')}>
          Chat
        </a>
      </h1>
      {session ? (
        <>
          <nav aria-label="Main">
            <a {...linkProps('/')} aria-current={path === '/' || path.startsWith('/chat') ? 'page' : undefined}>
              Chats
            </a>
            <a {...linkProps('/usage')} aria-current={path === '/usage' ? 'page' : undefined}>
              Usage
            </a>
            <a {...linkProps('/keys')} aria-current={path === '/keys' ? 'page' : undefined}>
              API keys
            </a>
          </nav>
          <div class="whoami">
            <BalanceBadge />
            <LiveIndicator />
            <span>
              <strong>{session.user.username}</strong>
            </span>
            <button
              type="button"
              class="secondary"
              onClick={() => {
                void logout().then(() => navigate('/login?bye=1', { replace: true }));
              }}
            >
              Log out
            </button>
          </div>
        </>
      ) : null}
    </header>
  );
}

function SignedOutRoutes(props: { path: string; query: URLSearchParams }) {
  const { path, query } = props;
  if (path === '/signup') return <SignupScreen />;
  if (path === '/verify-email') return <VerifyEmailScreen token={query.get('token') ?? ''} />;
  if (path === '/forgot-password') return <ForgotPasswordScreen />;
  if (path === '/reset-password') return <ResetPasswordScreen token={query.get('token') ?? ''} />;
  const notice = query.has('reset')
    ? 'Your password is changed. Log in with the new one.'
    : query.has('bye')
      ? 'You are logged out.'
      : query.has('expired')
        ? 'Your session ended; log in again.'
        : undefined;
  return <LoginScreen notice={notice} />;
}

function App() {
  const session = useSession();
  const { path, query } = useLocation();
  const userId = session?.user.id;

  useEffect(() => {
    if (!userId) {
      stopEvents();
      clearBalance();
      return;
    }
    startEvents();
    void refreshBalance();
    const timer = setInterval(() => {
      if (!document.hidden) void refreshBalance();
    }, BALANCE_EVERY_MS);
    // back to the tab (credits given meanwhile, a reply elsewhere): a fresh figure at once
    const onVisible = () => {
      if (!document.hidden) void refreshBalance();
    };
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('focus', onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('focus', onVisible);
      stopEvents();
    };
  }, [userId]);

  useEffect(() => {
    // signed in already: the log-in and sign-up screens lead to the chats
    if (session && ['/login', '/signup'].includes(path)) navigate('/', { replace: true });
    // a screen that needs a session, without one (logged out elsewhere, refresh refused): to the login screen
    if (!session && !['/login', '/signup', '/verify-email', '/forgot-password', '/reset-password'].includes(path)) navigate('/login', { replace: true });
  }, [session, path]);

  // the verification link works whether or not someone is signed in in this tab
  const verifying = path === '/verify-email';
  let screen = <SignedOutRoutes path={path} query={query} />;
  if (session && !verifying) {
    if (path === '/usage') screen = <UsageScreen />;
    else if (path === '/keys') screen = <ApiKeysScreen />;
    else {
      const match = /^\/chat\/([^/]+)$/.exec(path);
      screen = <ChatScreen sessionId={match ? decodeURIComponent(match[1] as string) : null} />;
    }
  }
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <Header session={session} path={path} />
      <main id="main" tabindex={-1} class={session && !verifying && path !== '/usage' && path !== '/keys' ? 'wide' : undefined}>
        {screen}
      </main>
    </>
  );
}

render(<App />, document.getElementById('root') as HTMLElement);
